// Dataset upload page: send the form with XMLHttpRequest so the browser -> console leg shows
// progress, rate and time left, and can be cancelled. Without JavaScript the same form is a
// normal multipart POST. The console -> Hanami leg is shown by the status block, which polls
// itself with htmx.
"use strict";

(function () {
  var current = null; // the running XMLHttpRequest

  function $(id) { return document.getElementById(id); }

  function megabytes(bytes) { return (bytes / 1e6).toFixed(1) + " MB"; }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) { return seconds + " s"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " min " + String(seconds % 60).padStart(2, "0") + " s"; }
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrf_token]");
    return field ? field.value : "";
  }

  function setText(id, text) { var node = $(id); if (node) { node.textContent = text; } }

  function setBusy(busy) {
    document.querySelectorAll("form.upload-form button[type=submit]").forEach(function (button) {
      button.disabled = busy;
    });
    var panel = $("browser-transfer");
    if (panel) { panel.hidden = !busy; }
  }

  function showProgress(loaded, total, started) {
    var fraction = total ? loaded / total : 0;
    var bar = $("browser-progress");
    if (bar) {
      bar.value = Math.round(fraction * 1000) / 10;
      bar.parentElement.setAttribute("aria-valuenow", String(bar.value));
    }
    setText("browser-percent", (Math.round(fraction * 1000) / 10).toFixed(1) + " %");
    setText("browser-bytes", megabytes(loaded) + " of " + megabytes(total));
    var elapsed = (performance.now() - started) / 1000;
    var rate = elapsed > 0 ? loaded / elapsed : 0;
    setText("browser-rate", rate > 0 ? megabytes(rate) + "/s" : "—");
    setText("browser-left", rate > 0 ? duration((total - loaded) / rate) + " left" : "—");
  }

  function showAlert(html, text) {
    var alerts = $("alerts");
    if (!alerts) { return; }
    if (html) {
      alerts.innerHTML = html;
    } else {
      var box = document.createElement("div");
      box.className = "alert alert-error";
      box.setAttribute("role", "alert");
      box.textContent = text;
      alerts.replaceChildren(box);
    }
    alerts.scrollIntoView({ block: "start" });
  }

  function replaceRegion(html) {
    var region = $("upload-region");
    region.innerHTML = html;
    if (window.htmx) { window.htmx.process(region); }
    return region;
  }

  function send(form) {
    var xhr = new XMLHttpRequest();
    var started = performance.now();
    current = xhr;
    setBusy(true);
    setText("browser-phase", "Sending the files to the console…");
    showProgress(0, 0, started);
    xhr.open("POST", form.action);
    xhr.setRequestHeader("HX-Request", "true");
    xhr.setRequestHeader("X-CSRF-Token", csrfToken(form));
    xhr.upload.onprogress = function (event) {
      if (event.lengthComputable) { showProgress(event.loaded, event.total, started); }
    };
    xhr.upload.onload = function () {
      setText("browser-phase", "All data received by the console; checking the files with Hanami's rules…");
      setText("browser-left", "0 s left");
    };
    xhr.onload = function () {
      current = null;
      if (xhr.status === 200) {
        replaceRegion(xhr.responseText);
        var statusUrl = xhr.getResponseHeader("X-Upload-Status");
        // replace, not push: the upload form has been used up, and Back should leave the page
        if (statusUrl) { window.history.replaceState(null, "", statusUrl); }
      } else if (xhr.status === 422) {
        var region = replaceRegion(xhr.responseText);
        var error = region.querySelector(".field-error");
        if (error) { error.scrollIntoView({ block: "center" }); }
      } else {
        setBusy(false);
        var html = (xhr.getResponseHeader("Content-Type") || "").indexOf("text/html") === 0 ? xhr.responseText : "";
        showAlert(html, "The upload was refused (HTTP " + xhr.status + ").");
      }
    };
    xhr.onerror = function () {
      current = null;
      setBusy(false);
      showAlert("", "The connection to the console broke during the upload. Nothing was created; try again.");
    };
    xhr.onabort = function () {
      current = null;
      setBusy(false);
      var alerts = $("alerts");
      if (alerts) {
        var box = document.createElement("div");
        box.className = "alert alert-info";
        box.setAttribute("role", "status");
        box.textContent = "Upload cancelled. Nothing was sent to Hanami.";
        alerts.replaceChildren(box);
      }
    };
    xhr.send(new FormData(form));
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("upload-form")) { return; }
    if (!window.FormData || !window.XMLHttpRequest || current) { return; }
    event.preventDefault();
    send(form);
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.id === "browser-cancel" && current) {
      current.abort();
    }
  });
})();
