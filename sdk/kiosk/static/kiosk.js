// The kiosk page: polls /api/status and refreshes the three views when a new frame is there.
"use strict";
(function () {
  const POLL_MS = 150;
  const banner = document.getElementById("banner");
  const hints = document.getElementById("hints");
  const bar = document.getElementById("progress-bar");
  const attract = document.getElementById("attract");
  const source = document.getElementById("source");
  const model = document.getElementById("model");
  const views = ["color", "ir", "depth"].map((s) => [s, document.getElementById("view-" + s)]);
  let shownFrame = -1;
  let loading = false;

  function text(state, decision) {
    if (state === "result" && decision) return decision;
    if (state === "checking") return "Checking\u2026";
    if (state === "attract") return "";
    if (state === "error") return "Out of order";
    return "Starting\u2026";
  }

  function setHints(list) {
    hints.replaceChildren(...list.map((h) => { const li = document.createElement("li"); li.textContent = h; return li; }));
  }

  function refreshViews(frame) {
    if (frame === shownFrame || frame === 0 || loading) return;
    loading = true;
    let pending = views.length;
    for (const [stream, img] of views) {
      const next = new Image();
      next.onload = next.onerror = () => {
        if (next.complete && next.naturalWidth) { img.src = next.src; img.hidden = false; }
        if (--pending === 0) { loading = false; shownFrame = frame; }
      };
      next.src = "/api/frame/" + stream + ".jpg?f=" + frame;
    }
  }

  async function poll() {
    try {
      const response = await fetch("/api/status", { cache: "no-store" });
      const s = await response.json();
      document.body.dataset.state = s.state;
      banner.dataset.state = s.state;
      banner.dataset.decision = s.state === "result" && s.decision ? s.decision : "";
      banner.textContent = text(s.state, s.decision);
      setHints(s.state === "error" ? ["Please call staff"] : s.hints || []);
      bar.style.width = Math.round(100 * (s.progress || 0)) + "%";
      attract.hidden = s.state !== "attract";
      source.textContent = s.source + (s.fps ? "  \u00b7  " + s.fps.toFixed(0) + " fps" : "");
      model.textContent = s.model_name + " " + s.model_version + " \u00b7 " + s.operating_point;
      refreshViews(s.frame);
    } catch (error) {
      banner.dataset.decision = "";
      banner.textContent = "Reconnecting\u2026";
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
