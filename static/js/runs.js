// Run page: the learning curve (accuracy per pass on the held-out dataset), drawn with Chart.js from
// the JSON in #run-curve-data. The status region polls with htmx; after every swap the chart takes the
// new points, so it grows live. The best pass is drawn larger and in another colour.
"use strict";

(function () {
  var chart = null;

  function read() {
    var source = document.getElementById("run-curve-data");
    return source ? JSON.parse(source.textContent) : null;
  }

  function styles(data) {
    return {
      radius: data.labels.map(function (pass) { return pass === data.best ? 7 : 3; }),
      colour: data.labels.map(function (pass) { return pass === data.best ? "#c2410c" : "#2d5bd7"; })
    };
  }

  function draw() {
    var canvas = document.getElementById("run-chart");
    var data = read();
    if (!canvas || !data || typeof Chart === "undefined") {
      return;
    }
    var look = styles(data);
    if (chart) {
      chart.data.labels = data.labels;
      chart.data.datasets[0].data = data.values;
      chart.data.datasets[0].pointRadius = look.radius;
      chart.data.datasets[0].pointBackgroundColor = look.colour;
      chart.update();
    } else {
      chart = new Chart(canvas, {
        type: "line",
        data: {
          labels: data.labels,
          datasets: [{
            label: "Accuracy (%)", data: data.values, borderColor: "#2d5bd7", borderWidth: 2,
            pointRadius: look.radius, pointBackgroundColor: look.colour, tension: 0
          }]
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: { display: false } },
          scales: {
            x: { title: { display: true, text: "Pass" }, ticks: { precision: 0 } },
            y: { title: { display: true, text: "Accuracy on held-out data (%)" }, suggestedMin: 0, suggestedMax: 100 }
          }
        }
      });
      canvas.chart = chart;
    }
    canvas.dataset.points = String(data.values.length);
    canvas.dataset.best = data.best === null ? "" : String(data.best);
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "run-status") {
      draw();
    }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
