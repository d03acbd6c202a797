// System page: power, temperature and speed charts (Chart.js), refreshed every few seconds.
// Data come from a JSON route polled with X-Console-Poll (polls are not user activity).
"use strict";

(function () {
  var dataNode = document.getElementById("system-data");
  if (!dataNode || typeof Chart === "undefined") { return; }
  var config = JSON.parse(dataNode.textContent);
  var range = config.range;
  var series = config.series;
  var charts = {};
  var status = document.getElementById("measure-status");
  var UNITS = { seconds: "s", minutes: "min", hours: "h", days: "d" };
  var timer = null;
  var failures = 0;

  function labels(count) {
    var out = [];
    for (var i = count - 1; i >= 0; i--) { out.push(i === 0 ? "now" : "-" + i + " " + UNITS[range]); }
    return out;
  }

  function draw() {
    document.querySelectorAll("canvas[data-metric]").forEach(function (canvas) {
      var key = canvas.dataset.metric;
      var values = (series[key] && series[key][range]) || [];
      var chart = charts[key];
      if (!chart) {
        chart = charts[key] = new Chart(canvas, {
          type: "line",
          data: { labels: labels(values.length), datasets: [{ label: canvas.dataset.label + " (" + canvas.dataset.unit + ")", data: values, pointRadius: 0, borderWidth: 2, tension: 0.2,
                     borderColor: (window.consoleChartColors || {}).line, backgroundColor: (window.consoleChartColors || {}).bar }] },
          options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } },
                     scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true } } }
        });
      } else {
        chart.data.labels = labels(values.length);
        chart.data.datasets[0].data = values;
        chart.update("none");
      }
      canvas.setAttribute("aria-label", canvas.dataset.label + " over the last " + range);
      var summary = canvas.closest("figure").querySelector(".chart-summary");
      if (summary) {
        var numbers = values.filter(function (v) { return typeof v === "number"; });
        if (!numbers.length) { summary.textContent = "no data"; return; }
        var sum = numbers.reduce(function (a, b) { return a + b; }, 0);
        var unit = canvas.dataset.unit;
        summary.textContent = "latest " + numbers[numbers.length - 1].toFixed(1) + " " + unit + " · mean " +
          (sum / numbers.length).toFixed(1) + " · max " + Math.max.apply(null, numbers).toFixed(1) + " (" + range + ")";
      }
    });
  }

  function setStatus(text) { if (status) { status.textContent = text; } }

  function refresh() {
    fetch(config.url, { headers: { "X-Console-Poll": "1", "Accept": "application/json" }, credentials: "same-origin", redirect: "manual" })
      .then(function (response) {
        var type = response.headers.get("content-type") || "";
        if (!response.ok || type.indexOf("application/json") !== 0) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) {
        series = data;
        failures = 0;
        draw();
        setStatus("Updated " + new Date().toLocaleTimeString() + ".");
      })
      .catch(function () {
        failures += 1;
        setStatus("Measurements could not be refreshed" + (failures >= 3 ? "; stopped. Reload the page to try again." : "."));
        if (failures >= 3 && timer) { clearInterval(timer); timer = null; }
      });
  }

  document.getElementById("range-tabs").addEventListener("click", function (event) {
    var link = event.target.closest("a[data-range]");
    if (!link) { return; }
    event.preventDefault();
    range = link.dataset.range;
    document.querySelectorAll("#range-tabs a").forEach(function (a) { a.removeAttribute("aria-current"); });
    link.setAttribute("aria-current", "page");
    history.replaceState(null, "", link.href);
    draw();
  });

  draw();
  timer = setInterval(function () { if (!document.hidden) { refresh(); } }, (config.poll_seconds || 5) * 1000);
})();
