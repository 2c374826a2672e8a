// The account page: the Copy button of a new token. The token is in a read-only input, so without
// JavaScript (or clipboard access) it can still be selected and copied by hand.
(function () {
  "use strict";

  function copied(id, text) {
    var note = document.querySelector('[data-copied-for="' + id + '"]');
    if (note) note.textContent = text;
  }

  function copy(button) {
    var id = button.getAttribute("data-copy");
    var input = document.getElementById(id);
    if (!input) return;
    input.select();
    var fallback = function () {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      copied(id, ok ? "Copied." : "Select the token and copy it.");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { copied(id, "Copied."); }, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () { copy(button); });
    });
  });
})();
