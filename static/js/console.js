// Hanami Web Console: behaviour shared by every page. No inline scripts anywhere (strict CSP).
"use strict";

// Forms marked data-confirm ask before submitting (the server still shows a confirmation page
// when JavaScript is off, so this only saves a round trip).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !form.dataset.confirmed) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }
}, true);

// After an htmx error response the alert region shows the message; bring it into view.
document.addEventListener("htmx:afterSwap", function (event) {
  if (event.detail && event.detail.target && event.detail.target.id === "alerts") {
    event.detail.target.scrollIntoView({ behavior: "smooth", block: "start" });
  }
});

// A request that never reached the console (network down, console restarting).
document.addEventListener("htmx:sendError", function () {
  var alerts = document.getElementById("alerts");
  if (alerts && !alerts.querySelector(".offline")) {
    var box = document.createElement("div");
    box.className = "alert alert-error offline";
    box.setAttribute("role", "alert");
    box.textContent = "The console cannot be reached. Check your connection; the page will keep trying.";
    alerts.prepend(box);
  }
});
document.addEventListener("htmx:afterRequest", function (event) {
  if (event.detail && event.detail.successful) {
    document.querySelectorAll("#alerts .offline").forEach(function (node) { node.remove(); });
  }
});
