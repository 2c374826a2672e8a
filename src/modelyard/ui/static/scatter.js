// modelyard scatter plot on a canvas: one point per run, any column against any other.
//   var s = modelyardScatter(box, {names: [...], onOpen: function (runIndex) {}});
//   s.draw(xColumn, yColumn, selected, {xlog: bool, ylog: bool})
//                                        // selected: null (all) or an array of booleans per run
//   s.redrawWith(selected)               // the same columns and scales, another selection
// A log scale applies to a numeric column with positive values (the others stay linear); values
// <= 0 are then missing.
// Missing values are left out (and counted in the box's data-missing); categorical columns are
// ordinal axes with a little deterministic jitter so that equal values do not hide each other.
// The box's data-points holds how many points were drawn.
(function () {
  "use strict";
  var P = window.modelyardPlot;
  var PAD = { left: 58, right: 16, top: 12, bottom: 42 };

  // Numbers get 4% of room at each end, so that the extreme points are not cut by the frame.
  function padded(d, column) {
    if (column.categories) return d;
    var m = (d[1] - d[0]) * 0.04;
    return [d[0] - m, d[1] + m];
  }

  function jitter(i) { var s = Math.sin(i * 12.9898) * 43758.5453; return (s - Math.floor(s) - 0.5) * 0.3; }

  window.modelyardScatter = function (box, options) {
    var names = options.names, tip = P.tooltip(box), points = [], last = null;

    function draw(xShown, yShown, selected, scales) {
      scales = scales || {};
      last = [xShown, yShown, selected, scales];
      var xc = scales.xlog && P.canLog(xShown) ? P.logColumn(xShown) : xShown;
      var yc = scales.ylog && P.canLog(yShown) ? P.logColumn(yShown) : yShown;
      var c = P.canvas(box), ctx = c.ctx, th = P.theme();
      var x0 = PAD.left, x1 = c.w - PAD.right, y0 = c.h - PAD.bottom, y1 = PAD.top;
      var xd = padded(P.domain(xc), xc), yd = padded(P.domain(yc), yc);
      var sx = function (v) { return x0 + (v - xd[0]) / (xd[1] - xd[0]) * (x1 - x0); };
      var sy = function (v) { return y0 - (v - yd[0]) / (yd[1] - yd[0]) * (y0 - y1); };
      ctx.font = P.font(11);
      ctx.lineWidth = 1;
      // grid and ticks
      ctx.strokeStyle = th.line; ctx.fillStyle = th.muted;
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      P.axisTicks(xc, xd[0], xd[1], Math.floor((x1 - x0) / 90)).forEach(function (t) {
        var x = Math.round(sx(t[0])) + 0.5;
        ctx.beginPath(); ctx.moveTo(x, y1); ctx.lineTo(x, y0); ctx.stroke();
        ctx.fillText(P.clip(ctx, String(t[1]), 84), x, y0 + 4);
      });
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      P.axisTicks(yc, yd[0], yd[1], Math.floor((y0 - y1) / 40)).forEach(function (t) {
        var y = Math.round(sy(t[0])) + 0.5;
        ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
        ctx.fillText(P.clip(ctx, String(t[1]), PAD.left - 8), x0 - 5, y);
      });
      ctx.strokeStyle = th.muted;
      ctx.strokeRect(x0 + 0.5, y1 + 0.5, x1 - x0, y0 - y1);
      // axis titles
      ctx.fillStyle = th.fg; ctx.font = P.font(12);
      ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      ctx.fillText(P.clip(ctx, xc.kind + " · " + xc.key + (xc.log ? " (log)" : ""), x1 - x0), (x0 + x1) / 2, c.h - 2);
      ctx.save(); ctx.translate(12, (y0 + y1) / 2); ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = "middle"; ctx.fillText(P.clip(ctx, yc.kind + " · " + yc.key + (yc.log ? " (log)" : ""), y0 - y1), 0, 0);
      ctx.restore();
      // points: the unselected first (grey), then the selected on top
      points = [];
      var missing = 0, radius = names.length > 300 ? 2.5 : 3.5;
      for (var i = 0; i < names.length; i++) {
        var xv = xc.values[i], yv = yc.values[i];
        if (xv === null || yv === null || xv === undefined || yv === undefined) { missing++; continue; }
        var px = sx(xc.categories ? xv + jitter(i) : xv), py = sy(yc.categories ? yv + jitter(i + 7) : yv);
        points.push([px, py, i, !selected || selected[i]]);
      }
      [false, true].forEach(function (on) {
        ctx.fillStyle = on ? th.accent : th.line;
        ctx.globalAlpha = on ? 0.8 : 0.9;
        ctx.beginPath();
        points.forEach(function (p) {
          if (p[3] !== on) return;
          ctx.moveTo(p[0] + radius, p[1]); ctx.arc(p[0], p[1], radius, 0, 2 * Math.PI);
        });
        ctx.fill();
      });
      ctx.globalAlpha = 1;
      box.setAttribute("data-points", String(points.length));
      box.setAttribute("data-missing", String(missing));
      box.setAttribute("data-selected", String(points.filter(function (p) { return p[3]; }).length));
    }

    function nearest(ev) {
      var r = box.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top, best = null, bd = 64;
      points.forEach(function (p) {
        var d = (p[0] - mx) * (p[0] - mx) + (p[1] - my) * (p[1] - my);
        if (d < bd) { bd = d; best = p; }
      });
      return { p: best, x: mx, y: my };
    }

    box.addEventListener("mousemove", function (ev) {
      var hit = nearest(ev);
      if (!hit.p || !last) { tip.hide(); box.style.cursor = ""; return; }
      var i = hit.p[2];
      box.style.cursor = "pointer";
      tip.show(hit.x, hit.y, [names[i], last[0].key + " = " + P.valueText(last[0], last[0].values[i]),
        last[1].key + " = " + P.valueText(last[1], last[1].values[i])]);
    });
    box.addEventListener("mouseleave", function () { tip.hide(); });
    box.addEventListener("click", function (ev) {
      var hit = nearest(ev);
      if (hit.p && options.onOpen) options.onOpen(hit.p[2]);
    });
    window.addEventListener("resize", function () { if (last) draw(last[0], last[1], last[2], last[3]); });
    return { draw: draw, redrawWith: function (selected) { if (last) draw(last[0], last[1], selected, last[3]); } };
  };
})();
