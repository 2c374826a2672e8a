// The version page's score box: the form arrives as an htmx fragment once the serving variants are
// known; its request body starts as the version's input example, which the page already read and
// carries in a JSON data block (so the fragment does not read the model's files a second time).
(function () {
  "use strict";

  function prefill(root) {
    var data = document.getElementById("serving-example");
    if (!data) return;
    root.querySelectorAll("textarea[data-example]").forEach(function (area) {
      if (area.value) return;
      try {
        area.value = JSON.parse(data.textContent) || "";
      } catch (e) {
        area.value = "";
      }
    });
  }

  document.addEventListener("htmx:afterSwap", function (ev) { prefill(ev.target.parentNode || document); });
  document.addEventListener("DOMContentLoaded", function () { prefill(document); });
})();
