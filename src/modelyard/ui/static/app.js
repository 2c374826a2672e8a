// modelyard UI: small progressive enhancements. Pages work without it; nothing here is inline.
(function () {
  "use strict";
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  // <time datetime="...Z" title="... UTC"> shows the viewer's local time; UTC stays on hover.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
        pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
      el.setAttribute("data-local", "");
    });
  }

  function enhance(root) {
    localTimes(root);
    root.querySelectorAll("a[data-back]").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        if (history.length > 1) { ev.preventDefault(); history.back(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (ev) { enhance(ev.target); });
  window.modelyard = { enhance: enhance };
})();
