// The run page: table search boxes, and the Charts tab (one uPlot chart per metric via charts.js).
// The first charts load at once (the page preloads their series), the others when they scroll into
// view; a drag over a range reloads that range from the server (full resolution once it holds fewer
// points than the budget); options live in the URL.
(function () {
  "use strict";

  // <input class="filter" data-filter="#table-or-list">: hide rows whose text does not match.
  function filters(root) {
    root.querySelectorAll("input.filter[data-filter]").forEach(function (input) {
      var target = document.querySelector(input.getAttribute("data-filter"));
      if (!target) return;
      input.addEventListener("input", function () {
        var q = input.value.trim().toLowerCase();
        target.querySelectorAll("tbody tr, li").forEach(function (row) {
          row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
    });
  }

  var X_KIND = { step: "step", timestamp: "time", relative: "duration" };
  var nf = new Intl.NumberFormat();

  function statText(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "string") return v === "Infinity" ? "∞" : v === "-Infinity" ? "-∞" : v;
    return window.modelyard.charts.formatNumber(v);
  }

  function setupCharts() {
    var container = document.getElementById("charts");
    var form = document.getElementById("chart-options");
    if (!container || !form || !window.uPlot) return;
    var url = container.getAttribute("data-series-url");
    var points = container.getAttribute("data-points");
    var initialX = form.elements.x.value;
    var cards = [];

    function options() {
      return {
        x: form.elements.x.value,
        logY: form.elements.scale.value === "log",
        smoothing: parseFloat(form.elements.smooth.value) || 0
      };
    }

    function load(card, lo, hi) {
      var o = options();
      var src;
      if (lo === undefined && o.x === initialX) {
        src = card.src;  // the URL the page named (and may have preloaded) for this chart
      } else {
        var params = new URLSearchParams({ key: card.key, x: o.x, points: points });
        if (lo !== undefined) {
          params.set("min", String(Math.floor(lo)));
          params.set("max", String(Math.ceil(hi)));
          if (card.summary) params.set("summary", "0");  // the whole history's summary is known already
        }
        src = url + "?" + params.toString();
      }
      card.el.classList.add("loading");
      card.pending = (card.pending || 0) + 1;
      var ticket = card.pending;
      // No extra headers: the request must match the page's <link rel=preload as=fetch> to reuse it.
      return fetch(src)
        .then(function (r) {
          if (!r.ok) return r.text().then(function () { throw new Error("HTTP " + r.status); });
          return r.json();
        })
        .then(function (s) {
          if (ticket !== card.pending) return;  // a newer request for this chart is on its way
          card.data = s;
          if (s.summary) card.summary = s.summary;
          card.zoomed = lo !== undefined;
          draw(card);
        })
        .catch(function (err) { card.note.textContent = "Could not load this chart: " + err.message; })
        .then(function () { card.el.classList.remove("loading"); });
    }

    function draw(card) {
      var s = card.data, o = options();
      card.chart.setOptions({ logY: o.logY, xKind: X_KIND[o.x] });
      card.chart.setSeries([{ label: card.key, x: s.x, y: s.y, yMin: s.y_min, yMax: s.y_max }], { smoothing: o.smoothing });
      var sum = card.summary;
      card.el.querySelector('[data-stat="min"]').textContent = statText(sum.min);
      card.el.querySelector('[data-stat="max"]').textContent = statText(sum.max);
      card.el.querySelector('[data-stat="last"]').textContent = statText(sum.last);
      card.el.querySelector('[data-stat="count"]').textContent = nf.format(sum.count);
      var unit = o.x === "step" ? "steps" : "ms";
      card.note.textContent = s.sampled
        ? nf.format(s.x.length) + " buckets of " + nf.format(s.bucket_width) + " " + unit + " from " +
          nf.format(s.points_in_range) + " points (line: mean, band: min–max). Drag to zoom in."
        : nf.format(s.x.length) + " points, full resolution." + (card.zoomed ? "" : " Drag to zoom in.");
      card.el.setAttribute("data-sampled", String(s.sampled));
      card.el.setAttribute("data-loaded-points", String(s.x.length));
      card.reset.hidden = !card.zoomed;
    }

    container.querySelectorAll(".chart-card").forEach(function (el) {
      var card = { el: el, key: el.getAttribute("data-key"), src: el.getAttribute("data-src"),
        note: el.querySelector(".chart-note"),
        reset: el.querySelector(".reset-zoom"), data: null, summary: null, zoomed: false };
      card.chart = window.modelyard.charts.create(el.querySelector(".chart-area"), {
        xKind: X_KIND[options().x], logY: options().logY,
        onZoom: function (lo, hi) { load(card, lo, hi); }
      });
      card.reset.addEventListener("click", function () { load(card); });
      cards.push(card);
    });

    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (!entry.isIntersecting) return;
        seen.unobserve(entry.target);
        var card = cards.filter(function (c) { return c.el === entry.target; })[0];
        if (card) load(card);
      });
    }, { rootMargin: "200px" });
    cards.forEach(function (c) {
      if (c.el.hasAttribute("data-preloaded")) load(c);  // its series is on its way already
      else seen.observe(c.el);
    });

    // Options apply at once; the URL keeps them (a reload or a shared link shows the same charts).
    var smoothOut = form.querySelector("output");
    form.addEventListener("change", function (ev) {
      if (ev.target.name === "keys") return;  // the metric chooser submits the form itself
      var params = new URLSearchParams(window.location.search);
      ["x", "scale", "smooth"].forEach(function (n) { params.set(n, form.elements[n].value); });
      history.replaceState(null, "", window.location.pathname + "?" + params.toString());
      cards.forEach(function (card) {
        if (!card.data) return;
        if (ev.target.name === "x") load(card);
        else draw(card);
      });
    });
    form.elements.smooth.addEventListener("input", function () {
      smoothOut.textContent = form.elements.smooth.value;
      cards.forEach(function (card) { if (card.data) draw(card); });
    });
    form.querySelector("button[type=submit]").hidden = true;  // applied live
  }

  document.addEventListener("DOMContentLoaded", function () {
    filters(document);
    setupCharts();
  });
  document.addEventListener("htmx:afterSwap", function (ev) { filters(ev.target); });
})();
