// The compare page's island: wires the JSON block (#compare-data) to the scatter plot and the
// parallel coordinates, and keeps their state (axes picked, brushes) in the URL with
// history.replaceState, so a reload or a shared link shows the same picture. The overlaid metric
// charts (charts.js over uPlot) load their series from /compare/series when they scroll into view.
(function () {
  "use strict";

  // A piece of the page's state changed in place: into the URL (replaceState: no history entry per
  // drag) and into the page's form as hidden fields, so that a later sort or axes change keeps it.
  function setParam(name, values) {
    var url = new URL(window.location.href);
    url.searchParams.delete(name);
    values.forEach(function (v) { url.searchParams.append(name, v); });
    history.replaceState(history.state, "", url.pathname + "?" + url.searchParams.toString());
    document.querySelectorAll("a[data-keeps-state]").forEach(function (a) {
      var link = new URL(a.href);
      link.searchParams.delete(name);
      values.forEach(function (v) { link.searchParams.append(name, v); });
      a.href = link.pathname + "?" + link.searchParams.toString();
    });
    var form = document.getElementById("compare-form");
    if (!form) return;
    form.querySelectorAll('input[type="hidden"][name="' + name + '"]').forEach(function (el) { el.remove(); });
    values.forEach(function (v) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = v;
      form.appendChild(input);
    });
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
    overlays(plot.best);
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
      if (!plot.x || !byId[plot.x]) xs.value = defaultX(data.columns, plot.axes, ys.value);
      var xlog = document.getElementById("scatter-xlog"), ylog = document.getElementById("scatter-ylog");
      var drawScatter = function () {
        scatter.draw(byId[xs.value], byId[ys.value], selected, { xlog: xlog.checked, ylog: ylog.checked });
      };
      [xs, ys].forEach(function (s) {
        s.addEventListener("change", function () { setParam(s === xs ? "x" : "y", [s.value]); drawScatter(); });
      });
      [xlog, ylog].forEach(function (box) {
        box.addEventListener("change", function () {
          setParam(box === xlog ? "xlog" : "ylog", box.checked ? ["1"] : []);
          drawScatter();
        });
      });
      drawScatter();
    } else if (scatterBox) {
      scatterBox.innerHTML = '<p class="empty">No metrics to plot.</p>';
    }

    // parallel coordinates
    var pcBox = document.getElementById("parcoords"), count = document.getElementById("parcoords-count");
    var axes = plot.axes.map(function (id) { return byId[id]; }).filter(Boolean);
    if (pcBox && axes.length >= 2) {
      var showCount = function (mask) {
        var n = mask.filter(Boolean).length;
        count.textContent = n === names.length ? names.length + " runs" : n + " of " + names.length + " runs selected";
      };
      var frame = 0;
      var pc = window.modelyardParcoords(pcBox, {
        names: names,
        best: plot.best,
        onOpen: open,
        // while dragging: the count and the scatter, once a frame; the URL (a 33 KB string at
        // 1,000 runs, and browsers throttle replaceState) only when the brush is set
        onChange: function (mask, brushes, done) {
          selected = mask.every(Boolean) ? null : mask;
          if (!frame) frame = requestAnimationFrame(function () {
            frame = 0;
            showCount(pc.selected());
            if (scatter) scatter.redrawWith(selected);
          });
          if (done) setParam("brush", Object.keys(brushes).map(function (id) {
            return id + ":" + brushes[id][0].toPrecision(6) + ":" + brushes[id][1].toPrecision(6);
          }));
        },
      });
      pc.draw(axes, readBrushes());
      var mask = pc.selected();
      selected = mask.every(Boolean) ? null : mask;
      showCount(mask);
      if (scatter) scatter.redrawWith(selected);
      document.getElementById("parcoords-clear").addEventListener("click", function () { pc.clear(); });
    } else if (pcBox) {
      // one axis draws no lines: say why instead of showing a lone axis
      var empty = document.createElement("p");
      empty.className = "empty";
      var picked = new URL(window.location.href).searchParams.getAll("axis").length > 0;
      empty.textContent = !axes.length ? "No params or metrics differ between these runs: nothing to draw."
        : picked ? "Parallel coordinates need two axes or more: pick another under Axes."
        : "Only " + axes[0].kind + " " + axes[0].key + " differs between these runs, and parallel coordinates " +
          "need two axes or more: pick others under Axes.";
      pcBox.textContent = "";
      pcBox.classList.add("note");
      pcBox.appendChild(empty);
      document.querySelectorAll("#parcoords-clear, #parcoords-panel .hint").forEach(function (el) { el.hidden = true; });
    }
  }

  // The scatter's default x: a parallel-coordinates axis other than y, else another column, those
  // that differ between the runs and numeric ones first; y itself (a diagonal, r2 against r2) only
  // when it is the runs' only column.
  function defaultX(columns, axes, y) {
    var varies = function (c) {
      var seen = c.values.filter(function (v) { return v !== null; });
      return seen.some(function (v) { return v !== seen[0]; });
    };
    var numeric = function (c) { return !c.categories; };
    var others = columns.filter(function (c) { return c.id !== y; });
    var ranked = others.filter(function (c) { return varies(c) && numeric(c); })
      .concat(others.filter(varies), others.filter(numeric), others);
    var axis = axes.filter(function (id) { return id !== y; })[0];
    return axis || (ranked.length ? ranked[0].id : y);
  }

  // --- overlaid metric charts ---------------------------------------------------------------
  function seriesUrl(key) {
    var here = new URL(window.location.href).searchParams, q = new URLSearchParams();
    q.set("runs", here.getAll("runs").join(","));
    ["sort", "dir"].forEach(function (n) { if (here.get(n)) q.set(n, here.get(n)); });
    q.set("key", key);
    return "/compare/series?" + q.toString();
  }

  // The message of an HTML error page (UiRoute), else the status.
  function errorText(text, status) {
    var doc = new DOMParser().parseFromString(text, "text/html"), el = doc.querySelector(".error");
    return el ? el.textContent : "Could not load the chart (HTTP " + status + ").";
  }

  function showError(box, message) {
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "error"; p.textContent = message;
    box.appendChild(p);
  }

  function loadChart(fig, best) {
    var box = fig.querySelector(".chart-box");
    fetch(seriesUrl(fig.getAttribute("data-key")), { headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.ok ? r.json() : r.text().then(function (t) { throw new Error(errorText(t, r.status)); });
      })
      .then(function (d) { drawChart(fig, box, d, best); })
      .catch(function (err) { showError(box, err.message); });
  }

  // Lines for the best runs (coloured as parcoords colours them: the best at the same end of the
  // ramp), and the rest as a grey min/max band, drawn by charts.js (the run page's uPlot wrapper).
  function drawChart(fig, box, d, best) {
    var P = window.modelyardPlot, k = d.lines.length, steps = {};
    fig.setAttribute("data-lines", String(k));
    fig.setAttribute("data-band", d.band ? String(d.band.runs) : "0");
    d.lines.forEach(function (l) { l.x.forEach(function (x) { steps[x] = true; }); });
    if (d.band) d.band.x.forEach(function (x) { steps[x] = true; });
    box.textContent = "";
    if (Object.keys(steps).length <= 1) {
      var note = document.createElement("p");
      note.className = "muted loading";
      note.textContent = "Logged at a single step: the table, the scatter plot and the parallel coordinates show it.";
      box.appendChild(note);
      return;
    }
    var list = [];
    if (d.band) {
      list.push({ label: "the other " + d.band.runs + " runs", color: "#8a8f98", x: d.band.x,
        y: d.band.x.map(function () { return null; }), yMin: d.band.low, yMax: d.band.high });
    }
    d.lines.forEach(function (l, i) {
      var t = k > 1 ? i / (k - 1) : 0;
      list.push({ label: l.name, color: P.ramp(best === "high" ? 1 - t * 0.999 : t), x: l.x, y: l.y });
    });
    var legend = document.createElement("div");
    legend.className = "chart-legend";
    legend.textContent = k + (k === 1 ? " run" : " runs") + (d.band ? " + a band of " + d.band.runs : "") +
      ". Point at a line to name it.";
    fig.insertBefore(legend, box);
    var chart = window.modelyard.charts.create(box, { height: box.clientHeight });
    chart.setSeries(list);
    nameOnHover(chart.plot(), list, legend);
  }

  // The legend line names the run whose line is nearest the cursor (within 12 px). charts.js gives
  // each entry three uPlot series (max, min, line), so entry i's line is series 3 + 3 i.
  function nameOnHover(u, list, legend) {
    var P = window.modelyardPlot;
    u.hooks.setCursor = (u.hooks.setCursor || []).concat(function () {
      var idx = u.cursor.idx, top = u.cursor.top;
      if (idx === null || idx === undefined || top === undefined || top < 0) return;
      var best = -1, distance = 12;
      list.forEach(function (entry, i) {
        var v = u.data[3 + 3 * i] && u.data[3 + 3 * i][idx];
        if (v === null || v === undefined) return;
        var dy = Math.abs(u.valToPos(v, "y") - top);
        if (dy < distance) { distance = dy; best = i; }
      });
      if (best < 0) return;
      legend.textContent = "";
      var b = document.createElement("b");
      b.textContent = list[best].label;  // text: run names are user input
      legend.appendChild(b);
      legend.appendChild(document.createTextNode("  step " + u.data[0][idx] + ": " + P.fmt(u.data[3 + 3 * best][idx])));
    });
  }

  function overlays(best) {
    var figs = document.querySelectorAll("#overlay-charts figure.overlay");
    if (!figs.length) return;
    if (!("IntersectionObserver" in window)) { figs.forEach(function (f) { loadChart(f, best); }); return; }
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting) return;
        seen.unobserve(e.target);
        loadChart(e.target, best);
      });
    }, { rootMargin: "300px" });
    figs.forEach(function (f) { seen.observe(f); });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
