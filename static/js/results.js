// Request result page: draws the chart from the JSON the server put in #result-chart-data.
// MNIST results: bar chart of the predicted classes; CSV results: line chart of the outputs.
"use strict";

(function () {
  function draw() {
    var source = document.getElementById("result-chart-data");
    var canvas = document.getElementById("result-chart");
    if (!source || !canvas || canvas.dataset.drawn || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var isBar = data.kind === "bar";
    var colors = window.consoleChartColors || { bar: "rgba(45, 91, 215, 0.65)", line: "#2d5bd7" };
    var chart = new Chart(canvas, {
      type: isBar ? "bar" : "line",
      data: {
        labels: data.labels,
        datasets: [{
          label: data.label,
          data: data.values,
          backgroundColor: isBar ? colors.bar : "rgba(45, 91, 215, 0.15)",
          borderColor: colors.line,
          borderWidth: isBar ? 1 : 1.5,
          pointRadius: isBar ? undefined : 0,
          tension: 0
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { title: { display: true, text: data.x_title }, ticks: { maxTicksLimit: 20 } },
          y: { title: { display: true, text: data.y_title }, beginAtZero: isBar }
        }
      }
    });
    canvas.dataset.drawn = "1";
    canvas.chart = chart;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
