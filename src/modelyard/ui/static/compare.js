// The compare page's island: wires the JSON block (#compare-data) to the scatter plot and the
// parallel coordinates, and keeps their state (axes picked, brushes) in the URL with
// history.replaceState, so a reload or a shared link shows the same picture.
(function () {
  "use strict";

  function setParam(name, values) {
    var url = new URL(window.location.href);
    url.searchParams.delete(name);
    values.forEach(function (v) { url.searchParams.append(name, v); });
    history.replaceState(history.state, "", url.pathname + "?" + url.searchParams.toString());
  }

  // brush=<column id>:<lo>:<hi> (column ids contain a colon themselves: split from the right)
  function readBrushes() {
    var out = {};
    new URL(window.location.href).searchParams.getAll("brush").forEach(function (text) {
      var j = text.lastIndexOf(":"), i = text.lastIndexOf(":", j - 1);
      if (i <= 0) return;
      var lo = parseFloat(text.slice(i + 1, j)), hi = parseFloat(text.slice(j + 1));
      if (isFinite(lo) && isFinite(hi)) out[text.slice(0, i)] = [Math.min(lo, hi), Math.max(lo, hi)];
    });
    return out;
  }

  function start() {
    var block = document.getElementById("compare-data");
    if (!block) return;
    var plot = JSON.parse(block.textContent), data = plot.data;
    var byId = {};
    data.columns.forEach(function (c) { byId[c.id] = c; });
    var names = data.runs.map(function (r) { return r.name; });
    var open = function (i) { window.location.href = "/runs/" + encodeURIComponent(data.runs[i].id); };

    // auto-apply the sort pickers (the button stays for keyboards and no-JS)
    var sortForm = document.getElementById("compare-form");
    if (sortForm) sortForm.querySelectorAll("select[name=sort], select[name=dir]").forEach(function (s) {
      s.addEventListener("change", function () { sortForm.requestSubmit(); });
    });

    // scatter
    var scatterBox = document.getElementById("scatter"), xs = document.getElementById("scatter-x"),
      ys = document.getElementById("scatter-y"), selected = null, scatter = null;
    var metrics = data.columns.filter(function (c) { return c.kind === "metric"; });
    if (scatterBox && metrics.length) {
      scatter = window.modelyardScatter(scatterBox, { names: names, onOpen: open });
      // defaults: the sort metric on y, the first differing param (else another metric) on x
      if (!plot.y || !byId[plot.y]) ys.value = plot.sort ? "metric:" + plot.sort : metrics[0].id;
      if (!plot.x || !byId[plot.x]) {
        var axis = plot.axes.filter(function (id) { return id !== ys.value; })[0];
        xs.value = axis || data.columns[0].id;
      }
      var drawScatter = function () { scatter.draw(byId[xs.value], byId[ys.value], selected); };
      [xs, ys].forEach(function (s) {
        s.addEventListener("change", function () { setParam(s === xs ? "x" : "y", [s.value]); drawScatter(); });
      });
      drawScatter();
    } else if (scatterBox) {
      scatterBox.innerHTML = '<p class="empty">No metrics to plot.</p>';
    }

    // parallel coordinates
    var pcBox = document.getElementById("parcoords"), count = document.getElementById("parcoords-count");
    var axes = plot.axes.map(function (id) { return byId[id]; }).filter(Boolean);
    if (pcBox && axes.length) {
      var showCount = function (mask) {
        var n = mask.filter(Boolean).length;
        count.textContent = n === names.length ? names.length + " runs" : n + " of " + names.length + " runs selected";
      };
      var pc = window.modelyardParcoords(pcBox, {
        names: names,
        best: plot.best,
        onOpen: open,
        onChange: function (mask, brushes) {
          selected = mask.every(Boolean) ? null : mask;
          showCount(mask);
          setParam("brush", Object.keys(brushes).map(function (id) {
            return id + ":" + brushes[id][0].toPrecision(6) + ":" + brushes[id][1].toPrecision(6);
          }));
          if (scatter) scatter.redrawWith(selected);
        },
      });
      pc.draw(axes, readBrushes());
      var mask = pc.selected();
      selected = mask.every(Boolean) ? null : mask;
      showCount(mask);
      if (scatter) scatter.redrawWith(selected);
      document.getElementById("parcoords-clear").addEventListener("click", function () { pc.clear(); });
    } else if (pcBox) {
      pcBox.innerHTML = '<p class="empty">No params or metrics differ between these runs: nothing to draw.</p>';
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
