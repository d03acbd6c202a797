// Live input checks for forms marked data-live-validate: Hanami's own rules (contract §1.6) are on
// each input (pattern, minlength, maxlength, data-rule message, data-min-bytes/data-max-bytes);
// this shows the message next to the field while typing. The server checks everything again.
"use strict";

(function () {
  var encoder = new TextEncoder();

  function problem(input) {
    var value = input.value;
    if (!value) { return input.required ? "Required. " + (input.dataset.rule || "") : ""; }
    if (input.pattern && !new RegExp("^(?:" + input.pattern + ")$").test(value)) { return input.dataset.rule; }
    var bytes = encoder.encode(value).length;  // Hanami counts bytes, not characters
    var min = parseInt(input.dataset.minBytes || "0", 10);
    var max = parseInt(input.dataset.maxBytes || "0", 10);
    if (min && bytes < min) { return input.dataset.rule + " (now " + bytes + ")"; }
    if (max && bytes > max) { return input.dataset.rule + " (now " + bytes + " bytes)"; }
    return "";
  }

  function show(input, force) {
    if (!input.dataset.rule) { return true; }
    var message = problem(input);
    input.setCustomValidity(message);
    var box = document.getElementById(input.id + "-error");
    if (box && (force || input.dataset.touched)) { box.textContent = message; }
    if (message && (force || input.dataset.touched)) { input.setAttribute("aria-invalid", "true"); }
    else if (!message) { input.removeAttribute("aria-invalid"); }
    return !message;
  }

  function inLiveForm(node) { return node instanceof HTMLInputElement && node.closest("form[data-live-validate]"); }

  document.addEventListener("input", function (event) {
    if (inLiveForm(event.target)) { show(event.target, false); }
  });
  document.addEventListener("focusout", function (event) {
    if (inLiveForm(event.target) && event.target.value) { event.target.dataset.touched = "1"; show(event.target, true); }
  });
  document.addEventListener("change", function (event) {
    if (inLiveForm(event.target)) { event.target.dataset.touched = "1"; show(event.target, true); }
  });
  // On submit every field shows its message, and the first bad one gets the focus.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-live-validate")) { return; }
    var first = null;
    form.querySelectorAll("input[data-rule]").forEach(function (input) {
      input.dataset.touched = "1";
      if (!show(input, true) && !first) { first = input; }
    });
    if (first) { event.preventDefault(); event.stopImmediatePropagation(); first.focus(); }
  }, true);
})();
