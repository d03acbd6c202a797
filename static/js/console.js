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

// On a narrow screen the main menu folds behind the "Menu" button (CSS shows the button only
// then, and only once this script runs: without JavaScript the menu simply stays open).
(function () {
  var header = document.querySelector(".topbar");
  var toggle = header && header.querySelector(".menu-toggle");
  var nav = document.getElementById("mainnav");
  if (!toggle || !nav) { return; }
  header.classList.add("has-menu-toggle");
  toggle.addEventListener("click", function () {
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("open", open);
    if (open) { var first = nav.querySelector("a"); if (first) { first.focus(); } }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && nav.classList.contains("open")) {
      toggle.setAttribute("aria-expanded", "false");
      nav.classList.remove("open");
      toggle.focus();
    }
  });
})();

// A box that scrolls inside the page (a wide table on a narrow screen, a long message in <pre>)
// must be reachable by keyboard: it takes the focus, and the arrow keys scroll it.
(function () {
  var FOCUSABLE = "a[href], button, input, select, textarea, [tabindex]";
  function scrolls(box) {
    var style = getComputedStyle(box);
    var sideways = box.scrollWidth > box.clientWidth + 1 && /auto|scroll/.test(style.overflowX);
    var down = box.scrollHeight > box.clientHeight + 1 && /auto|scroll/.test(style.overflowY);
    return sideways || down;
  }
  function mark() {
    document.querySelectorAll("main table, main .table-scroll, main pre, main .brick-layout").forEach(function (box) {
      var needs = scrolls(box) && !box.querySelector(FOCUSABLE);
      if (needs && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.dataset.scrollFocus = "1";
      } else if (!needs && box.dataset.scrollFocus) {
        box.removeAttribute("tabindex");
        delete box.dataset.scrollFocus;
      }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", mark); } else { mark(); }
  window.addEventListener("resize", mark);
  document.addEventListener("htmx:afterSettle", mark);
  document.addEventListener("toggle", mark, true);  // a <details> opened: its contents may scroll
})();
