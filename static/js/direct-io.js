/* Direct IO page: drawing canvas (MNIST-style pre-processing), websocket to the console's bridge,
   output chart, teach and dataset replay. Loaded with defer; strict CSP (no inline code). */
(function () {
  "use strict";

  var cfgEl = document.getElementById("direct-io-config");
  if (!cfgEl) { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var $ = function (id) { return document.getElementById(id); };

  var statusEl = $("bridge-status");
  var form = $("connect-form");
  if (!form) { return; }
  var work = $("dio-work");
  var ws = null;
  var layout = null;
  var chart = null;
  var busy = false;
  var closedShown = false;

  var STATE_LABEL = { connecting: "Connecting", open: "Open", closing: "Closing", closed: "Closed" };

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = (STATE_LABEL[state] || state) + (text ? " — " + text : "");
  }

  function setBusy(value) {
    busy = value;
    ["dio-ask", "dio-teach", "replay-start"].forEach(function (id) {
      var el = $(id);
      if (el) { el.disabled = value || !ws; }
    });
    $("dio-stop").disabled = !value;
  }

  // ---- drawing -------------------------------------------------------------------------------
  var canvas = $("dio-canvas");
  var ctx = canvas.getContext("2d", { willReadFrequently: true });
  var preview = $("dio-preview");
  var pctx = preview.getContext("2d");
  var drawing = null;

  function clearCanvas() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    updatePreview();
  }

  function point(event) {
    var rect = canvas.getBoundingClientRect();
    return {
      x: (event.clientX - rect.left) * canvas.width / rect.width,
      y: (event.clientY - rect.top) * canvas.height / rect.height
    };
  }

  function stroke(from, to) {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = 20;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  canvas.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = point(event);
    stroke(drawing, { x: drawing.x + 0.01, y: drawing.y });
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) { return; }
    event.preventDefault();
    var next = point(event);
    stroke(drawing, next);
    drawing = next;
  });
  function endStroke(event) {
    if (!drawing) { return; }
    drawing = null;
    if (canvas.hasPointerCapture(event.pointerId)) { canvas.releasePointerCapture(event.pointerId); }
    updatePreview();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  $("dio-clear").addEventListener("click", clearCanvas);

  /* Like MNIST: the digit's bounding box is scaled (keeping its aspect) into a 20x20 box by area
     averaging, then placed in a 28x28 field so that its centre of mass sits in the middle.
     White digit on black, pixel values 0..255. */
  function mnistPixels() {
    var w = canvas.width, h = canvas.height;
    var data = ctx.getImageData(0, 0, w, h).data;
    var minX = w, minY = h, maxX = -1, maxY = -1, x, y;
    for (y = 0; y < h; y++) {
      for (x = 0; x < w; x++) {
        if (data[(y * w + x) * 4] > 0) {
          if (x < minX) { minX = x; }
          if (x > maxX) { maxX = x; }
          if (y < minY) { minY = y; }
          if (y > maxY) { maxY = y; }
        }
      }
    }
    var out = new Array(784).fill(0);
    if (maxX < 0) { return out; }
    var bw = maxX - minX + 1, bh = maxY - minY + 1;
    var scale = 20 / Math.max(bw, bh);
    var sw = Math.max(1, Math.min(20, Math.round(bw * scale)));
    var sh = Math.max(1, Math.min(20, Math.round(bh * scale)));
    var sum = new Float64Array(sw * sh), count = new Float64Array(sw * sh);
    for (y = minY; y <= maxY; y++) {
      var ty = Math.min(sh - 1, Math.floor((y - minY) * sh / bh));
      for (x = minX; x <= maxX; x++) {
        var tx = Math.min(sw - 1, Math.floor((x - minX) * sw / bw));
        sum[ty * sw + tx] += data[(y * w + x) * 4];
        count[ty * sw + tx] += 1;
      }
    }
    var small = new Float64Array(sw * sh), mass = 0, cx = 0, cy = 0;
    for (y = 0; y < sh; y++) {
      for (x = 0; x < sw; x++) {
        var v = count[y * sw + x] ? sum[y * sw + x] / count[y * sw + x] : 0;
        small[y * sw + x] = v;
        mass += v; cx += (x + 0.5) * v; cy += (y + 0.5) * v;
      }
    }
    if (mass === 0) { return out; }
    var ox = Math.round(14 - cx / mass), oy = Math.round(14 - cy / mass);
    for (y = 0; y < sh; y++) {
      for (x = 0; x < sw; x++) {
        var X = x + ox, Y = y + oy;
        if (X >= 0 && X < 28 && Y >= 0 && Y < 28) { out[Y * 28 + X] = Math.round(small[y * sw + x]); }
      }
    }
    return out;
  }

  function updatePreview() {
    var pixels = mnistPixels();
    var image = pctx.createImageData(28, 28);
    for (var i = 0; i < 784; i++) {
      image.data[i * 4] = image.data[i * 4 + 1] = image.data[i * 4 + 2] = pixels[i];
      image.data[i * 4 + 3] = 255;
    }
    pctx.putImageData(image, 0, 0);
  }

  // ---- inputs --------------------------------------------------------------------------------
  function isDrawing() { return layout && layout.input_size === 784; }
  function isDigits() { return layout && layout.input_size === 784 && layout.output_size === 10; }

  function parseNumbers(text, size, what) {
    var parts = text.split(/[\s,;]+/).filter(function (s) { return s.length > 0; });
    if (parts.length !== size) { throw new Error(what + ": " + size + " numbers are needed, " + parts.length + " were given."); }
    return parts.map(function (s) {
      var n = Number(s);
      if (!isFinite(n)) { throw new Error(what + ": '" + s + "' is not a number."); }
      return n;
    });
  }

  function inputValues() {
    if (isDrawing()) { return mnistPixels(); }
    return parseNumbers($("dio-values").value, layout.input_size, "Input");
  }

  function showError(text) {
    var el = $("dio-teach-status");
    el.textContent = text;
    el.dataset.kind = "error";
  }

  function send(message) {
    if (!ws || ws.readyState !== WebSocket.OPEN) { showError("Not connected."); return false; }
    ws.send(JSON.stringify(message));
    return true;
  }

  $("dio-ask").addEventListener("click", function () {
    var values;
    try { values = inputValues(); } catch (err) { showError(err.message); return; }
    if (send({ op: "ask", values: values })) { setBusy(true); $("dio-winner").textContent = "Asking…"; }
  });

  $("dio-teach").addEventListener("click", function () {
    var message = { op: "teach", repeat: parseInt($("dio-repeat").value, 10) || 1 };
    try {
      message.values = inputValues();
      if (isDigits()) { message.label = parseInt($("dio-digit").value, 10); }
      else { message.expected = parseNumbers($("dio-expected").value, layout.output_size, "Expected output"); }
    } catch (err) { showError(err.message); return; }
    if (send(message)) {
      setBusy(true);
      $("dio-teach-status").dataset.kind = "";
      $("dio-teach-status").textContent = "Teaching…";
    }
  });

  $("dio-stop").addEventListener("click", function () { send({ op: "stop" }); });

  // ---- output chart --------------------------------------------------------------------------
  function showOutput(values, winner, ms) {
    var labels = values.map(function (_, i) { return String(i); });
    var colors = values.map(function (_, i) { return i === winner ? "#1f7a3a" : "#6b8fb8"; });
    if (window.Chart) {
      if (!chart) {
        chart = new window.Chart($("dio-chart"), {
          type: "bar",
          data: { labels: labels, datasets: [{ label: "output", data: values, backgroundColor: colors }] },
          options: { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { display: false } } }
        });
      } else {
        chart.data.labels = labels;
        chart.data.datasets[0].data = values;
        chart.data.datasets[0].backgroundColor = colors;
        chart.update();
      }
    }
    var winnerEl = $("dio-winner");
    winnerEl.dataset.winner = String(winner);
    winnerEl.textContent = "Winning class: " + winner + " (" + ms.toFixed(1) + " ms)";
    $("dio-output-values").textContent = values.map(function (v, i) { return i + ": " + v.toFixed(4); }).join("\n");
  }

  // ---- replay --------------------------------------------------------------------------------
  var replayForm = $("replay-form");
  function syncReplayKind() {
    var kind = replayForm.querySelector("input[name=kind]:checked").value;
    replayForm.querySelector(".replay-mnist").hidden = kind !== "mnist";
    replayForm.querySelector(".replay-csv").hidden = kind !== "csv";
  }
  replayForm.addEventListener("change", syncReplayKind);
  syncReplayKind();

  replayForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!ws) { return; }
    var status = $("replay-status");
    status.textContent = "Uploading…";
    setBusy(true);
    fetch(replayForm.action, {
      method: "POST", body: new FormData(replayForm), credentials: "same-origin",
      headers: { "X-CSRF-Token": cfg.csrf }
    }).then(function (response) {
      return response.json().catch(function () { return { error: "The console refused the upload (" + response.status + ")." }; });
    }).then(function (answer) {
      if (answer.error) { status.textContent = answer.error; setBusy(false); return; }
      status.textContent = "Uploaded " + answer.summary + ". Replaying…";
      var limit = parseInt($("replay-limit").value, 10);
      var message = { op: "replay", id: answer.id, mode: $("replay-mode").value, measure: $("replay-measure").checked };
      if (limit > 0) { message.limit = limit; }
      if (!send(message)) { setBusy(false); }
    }).catch(function () { status.textContent = "The upload failed."; setBusy(false); });
  });

  function showReplay(m) {
    var text = m.done + " / " + m.total + " samples " + (m.mode === "train" ? "trained" : "asked");
    if (m.accuracy !== null && m.accuracy !== undefined) { text += " — accuracy " + (m.accuracy * 100).toFixed(1) + " %"; }
    if (m.mae !== null && m.mae !== undefined) { text += " — mean absolute error " + m.mae.toFixed(4); }
    if (m.finished) { text += m.stopped ? " (stopped)" : " (done in " + m.seconds.toFixed(1) + " s)"; }
    var el = $("replay-status");
    el.textContent = text;
    el.dataset.finished = m.finished ? "1" : "0";
  }

  // ---- the websocket -------------------------------------------------------------------------
  function layoutReady(l) {
    layout = l;
    work.hidden = false;
    $("dio-draw").hidden = !isDrawing();
    $("dio-vector").hidden = isDrawing();
    $("dio-teach-digit").hidden = !isDigits();
    $("dio-teach-vector").hidden = isDigits();
    $("dio-input-count").textContent = String(l.input_size);
    $("dio-output-count").textContent = String(l.output_size);
    var digit = $("dio-digit");
    digit.textContent = "";
    for (var i = 0; i < l.output_size && i < 100; i++) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = String(i);
      digit.appendChild(option);
    }
    if (isDrawing()) { clearCanvas(); }
    setBusy(false);
  }

  function onMessage(event) {
    var m = JSON.parse(event.data);
    switch (m.type) {
      case "state":
        if (m.state === "open") {
          setStatus("open", "input " + m.layout.input_name + " (" + m.layout.input_size + "), output " +
            m.layout.output_name + " (" + m.layout.output_size + ")");
          layoutReady(m.layout);
        } else if (m.state === "closed") {
          closedShown = true;
          setStatus("closed", m.message + (m.task_mode ? " The cluster is back in task mode." : ""));
        } else {
          setStatus(m.state, m.message);
        }
        break;
      case "refused":
        closedShown = true;
        setStatus("closed", m.message);
        break;
      case "output":
        setBusy(false);
        showOutput(m.values, m.winner, m.ms);
        break;
      case "teaching":
        $("dio-teach-status").textContent = "Teaching… " + m.count + " / " + m.total;
        break;
      case "taught":
        setBusy(false);
        $("dio-teach-status").dataset.kind = "";
        $("dio-teach-status").textContent = "Taught " + m.count + (m.count === 1 ? " time" : " times") +
          (m.stopped ? " (stopped)" : "") + " in " + m.ms.toFixed(0) + " ms.";
        break;
      case "replay":
        showReplay(m);
        if (m.finished) { setBusy(false); }
        break;
      case "error":
        setBusy(false);
        showError(m.message);
        if (!m.fatal) { $("replay-status").textContent = $("replay-status").textContent || ""; }
        break;
      default:
        break;
    }
  }

  function resetUi() {
    ws = null;
    layout = null;
    work.hidden = true;
    $("dio-connect").disabled = false;
    $("dio-disconnect").disabled = true;
    setBusy(false);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (ws) { return; }
    var hello = { op: "open", csrf: cfg.csrf, input: $("dio-input").value, output: $("dio-output").value };
    var url = new URL(cfg.ws, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    closedShown = false;
    setStatus("connecting", "opening the connection to the console…");
    $("dio-connect").disabled = true;
    var socket = new WebSocket(url.toString());
    ws = socket;
    var pinger = null;
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify(hello));
      $("dio-disconnect").disabled = false;
      // lets the console tell a quiet page from a lost network
      pinger = window.setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) { socket.send('{"op":"ping"}'); }
      }, 20000);
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      if (pinger) { window.clearInterval(pinger); }
      if (!closedShown) {
        setStatus("closed", event.reason || (event.code === 1006 ? "the connection to the console was lost or refused." : "the connection closed."));
      }
      if (ws === socket) { resetUi(); }
    });
  });

  $("dio-disconnect").addEventListener("click", function () {
    if (ws && ws.readyState === WebSocket.OPEN) {
      setStatus("closing", "returning the cluster to task mode…");
      ws.send(JSON.stringify({ op: "close" }));
    }
  });

  window.addEventListener("pagehide", function () { if (ws) { ws.close(1001, "page closed"); } });
})();
