// The operator page: state, fps, stage timings, operating point and the last results.
"use strict";
(function () {
  const POLL_MS = 500;
  const $ = (id) => document.getElementById(id);
  const cell = (row, value, cls) => { const td = row.insertCell(); td.textContent = value; if (cls) td.className = cls; return td; };
  const fmt = (v, digits) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(digits));

  async function poll() {
    try {
      const [status, results] = await Promise.all([
        fetch("/api/status", { cache: "no-store" }).then((r) => r.json()),
        fetch("/api/results", { cache: "no-store" }).then((r) => r.json()),
      ]);
      $("op-state").textContent = status.state;
      $("op-source").textContent = status.source;
      $("op-fps").textContent = fmt(status.fps, 1);
      $("op-model").textContent = status.model_name + " " + status.model_version;
      $("op-point").textContent = status.operating_point;
      $("op-threshold").textContent = fmt(status.threshold, 3);
      $("op-message").textContent = status.message || "-";
      const timings = $("op-timings");
      timings.replaceChildren();
      for (const [stage, ms] of Object.entries(status.timings_ms || {})) {
        const row = timings.insertRow();
        const th = document.createElement("th"); th.textContent = stage; row.appendChild(th);
        cell(row, fmt(ms, 2));
      }
      const body = $("op-results");
      body.replaceChildren();
      for (const r of results.results) {
        const row = body.insertRow();
        if (r.correct === false) row.className = "wrong";
        cell(row, r.attempt); cell(row, r.time); cell(row, r.source); cell(row, r.expected || "-");
        cell(row, r.decision, r.decision); cell(row, fmt(r.score, 3)); cell(row, r.frames_used);
        cell(row, fmt(r.seconds, 1)); cell(row, (r.reasons || []).join(", ") || "-");
      }
    } catch (error) {
      $("op-state").textContent = "server unreachable";
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
