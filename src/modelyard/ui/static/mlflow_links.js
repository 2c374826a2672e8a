// MLflow's links on modelyard: the real mlflow client prints `View run ... at: http://HOST/#/experiments/1/runs/ID`
// (and `#/experiments/1`, `#/models/NAME`, `#/models/NAME/versions/3`). The fragment never reaches the
// server, so `/` (and the sign-in page it may lead to) loads this script, which sends such a link on to
// modelyard's own page. Only ids that pass strict patterns are put in a URL; a model name only ever as an
// encoded query value. Any other fragment is left alone.
(function () {
  "use strict";
  var hash = location.hash.replace(/^#/, "");
  if (hash.charAt(0) !== "/") return;
  var path = hash.split("?")[0];
  var m, target = null;
  var segment = function (s) {
    try { return decodeURIComponent(s); } catch (e) { return null; }
  };
  if ((m = /^\/experiments\/(\d{1,19})\/runs\/([0-9A-Za-z]{1,64})(?:\/.*)?$/.exec(path))) {
    target = "/runs/" + m[2];
  } else if ((m = /^\/experiments\/(\d{1,19})(?:\/(?!runs\/).*)?$/.exec(path))) {
    target = "/experiments/" + m[1];
  } else if ((m = /^\/models\/([^/]+)\/versions\/(\d{1,10})\/?$/.exec(path))) {
    var name = segment(m[1]);
    if (name) target = "/model-version?name=" + encodeURIComponent(name) + "&version=" + m[2];
  } else if ((m = /^\/models\/([^/]+)\/?$/.exec(path))) {
    var model = segment(m[1]);
    if (model) target = "/model?name=" + encodeURIComponent(model);
  }
  if (target) location.replace(target);
})();
