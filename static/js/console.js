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

// Boosted navigation swaps only the body, so a page's own scripts (in its head: charts, live form
// checks) would never load or run. A page that brings such scripts is loaded as a full page instead.
var SHELL_SCRIPT = /\/(vendor\/htmx-[0-9.]+\.min|js\/console)\.js(\?.*)?$/;
document.addEventListener("htmx:beforeSwap", function (event) {
  var detail = event.detail;
  if (!detail || !detail.boosted || !detail.xhr || typeof detail.serverResponse !== "string") { return; }
  // Only links: loading the URL again must be safe (a boosted form's POST is not repeated).
  if (!detail.requestConfig || String(detail.requestConfig.verb).toLowerCase() !== "get") { return; }
  var head = new DOMParser().parseFromString(detail.serverResponse, "text/html").head;
  var pageScripts = Array.prototype.filter.call(head.querySelectorAll("script[src]"), function (script) {
    return !SHELL_SCRIPT.test(script.getAttribute("src"));
  });
  if (pageScripts.length) {
    detail.shouldSwap = false;
    window.location.assign(detail.xhr.responseURL);
  }
});
