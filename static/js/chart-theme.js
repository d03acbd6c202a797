// Charts follow the page's colours (light or dark, from the system setting): text, grid lines and
// the series colours come from the CSS variables in app.css. Load after Chart.js, before the charts.
"use strict";

(function () {
  if (typeof Chart === "undefined") { return; }
  var style = getComputedStyle(document.documentElement);
  function css(name, fallback) { return (style.getPropertyValue(name) || "").trim() || fallback; }
  Chart.defaults.color = css("--chart-text", "#4a5566");
  Chart.defaults.borderColor = css("--chart-grid", "rgba(0, 0, 0, 0.12)");
  window.consoleChartColors = { bar: css("--chart-bar", "rgba(45, 91, 215, 0.65)"), line: css("--chart-line", "#2d5bd7") };
})();
