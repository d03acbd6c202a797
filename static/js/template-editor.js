// Template editor on the "New cluster" page. The page works without this file: the server checks
// the template (htmx on input, or the "Check template" button) and draws the bricks. This only
// moves the caret to an error the server reported ("Go to line N").
"use strict";

(function () {
  function selectPosition(textarea, line, column) {
    var lines = textarea.value.split("\n");
    var index = Math.max(0, Math.min(line, lines.length) - 1);
    var start = 0;
    for (var i = 0; i < index; i++) { start += lines[i].length + 1; }
    var offset = Math.max(0, Math.min(column - 1, lines[index].length));
    textarea.focus();
    textarea.setSelectionRange(start + offset, start + lines[index].length);
    // Scroll the selected line into view: roughly line height times line index.
    var lineHeight = parseFloat(window.getComputedStyle(textarea).lineHeight) || 20;
    textarea.scrollTop = Math.max(0, (index - 3) * lineHeight);
  }

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest(".goto-line") : null;
    if (!button) { return; }
    var textarea = document.getElementById("template");
    if (!textarea) { return; }
    event.preventDefault();
    selectPosition(textarea, parseInt(button.dataset.line, 10) || 1, parseInt(button.dataset.column, 10) || 1);
  });
})();
