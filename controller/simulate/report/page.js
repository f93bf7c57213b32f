// The simulation report page: reads the run from the JSON in #vireo-run and lays it out — key figures,
// VMs running over time, host use (heat map), outages and migrations (Gantt), imbalance, RPO lag, and the
// tables behind them. Every string from the run goes into the page as a text node. Plain browser script,
// no build step; uPlot (inlined before it) draws the line charts, canvas.js the heat map and Gantt chart.
"use strict";

(function () {
  const run = JSON.parse(document.getElementById("vireo-run").textContent);
  const root = document.getElementById("report");
  const { scenario, summary, series } = run;

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(typeof c === "object" ? c : document.createTextNode(String(c)));
    return e;
  }

  /** `+1h30m`, `+45s`: a time of the run, from its start. */
  function at(seconds) {
    return seconds === 0 ? "+0s" : `+${span(seconds)}`;
  }

  function span(seconds) {
    if (seconds < 60) return `${Math.round(seconds * 10) / 10}s`;
    const s = Math.round(seconds);
    const units = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
    const i = units.findIndex(([size]) => s >= size);
    const [size, unit] = units[i];
    const [nextSize, nextUnit] = units[i + 1] || [1, ""];
    const rest = Math.trunc((s % size) / nextSize);
    return `${Math.trunc(s / size)}${unit}${rest > 0 && nextUnit ? `${rest}${nextUnit}` : ""}`;
  }

  function table(headers, rows, rowClass) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", h.endsWith("#") ? { class: "num" } : {}, h.replace(/#$/, ""))))),
      el("tbody", {}, rows.map((r, i) => el("tr", rowClass && rowClass(i) ? { class: rowClass(i) } : {}, r.map((c, j) => el("td", headers[j].endsWith("#") ? { class: "num" } : {}, c))))));
  }

  function card(figure, labelText, tone) {
    return el("div", { class: `card${tone ? ` ${tone}` : ""}` }, el("div", { class: "figure" }, figure), el("div", { class: "label" }, labelText));
  }

  function section(id, title, lede) {
    const s = el("section", { id, "aria-labelledby": `${id}-title` }, el("h2", { id: `${id}-title` }, title), lede ? el("p", { class: "lede" }, lede) : null);
    root.append(s);
    return s;
  }

  // ---------------------------------------------------------------- header and key figures

  root.replaceChildren(
    el("h1", {}, `Simulation: ${scenario.name}`),
    scenario.description ? el("p", { class: "lede" }, scenario.description) : null,
    el("p", { class: "hint" }, `${scenario.file}, seed ${scenario.seed}: ${span(scenario.durationSeconds)} of simulated time from ${scenario.start}, sampled every ${span(scenario.sampleSeconds)}. Times are shown from the start of the run.`),
  );
  const down = summary.recoveries.length + summary.notRecovered.length;
  const slowest = summary.recoveries.reduce((m, r) => Math.max(m, r.seconds), 0);
  const missed = summary.rpo.filter((r) => !r.met).length;
  root.append(el("div", { class: "cards" },
    card(`${summary.vms.runningAtEnd} / ${summary.vms.shouldRun}`, "VMs running at the end / that should run"),
    card(String(down), "VM outages"),
    card(summary.recoveries.length > 0 ? span(slowest) : "–", "slowest recovery"),
    card(String(summary.notRecovered.length), "never came back", summary.notRecovered.length > 0 ? "bad" : "ok"),
    card(String(summary.migrations.length), `migrations (max downtime ${summary.migrationTotals.maxDowntimeMs} ms)`),
    card(summary.rpo.length === 0 ? "–" : missed === 0 ? "met" : `${missed} missed`, "RPO", missed > 0 ? "bad" : summary.rpo.length > 0 ? "ok" : ""),
    card(summary.peakUtilization.cpu ? `${summary.peakUtilization.cpu.percent}%` : "–", summary.peakUtilization.cpu ? `peak CPU (${summary.peakUtilization.cpu.host})` : "peak CPU"),
    card(String(summary.splitBrainAttempts), "split-brain attempts", summary.splitBrainAttempts === 0 ? "ok" : "bad"),
  ));
  root.append(el("h3", {}, "Steps"), scenario.steps.length === 0 ? el("p", { class: "hint" }, "No steps: the fleet alone.")
    : table(["at", "step", "note"], scenario.steps.map((s) => [at(s.at), s.summary, s.note || ""])));

  // ---------------------------------------------------------------- line charts (uPlot)

  const charts = [];
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  /** Time-axis steps a person counts in: seconds, minutes, hours, days. */
  const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  const palette = ["#2463b5", "#2e7d4f", "#c0392b", "#b9770e", "#8e44ad", "#16a085", "#d35400", "#7f8c8d"];

  function stepMarkers() {
    return {
      hooks: {
        draw: [(u) => {
          const { ctx } = u;
          ctx.save();
          ctx.strokeStyle = cssVar("--accent");
          ctx.setLineDash([4, 3]);
          for (const s of scenario.steps) {
            const x = Math.round(u.valToPos(s.at, "x", true));
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
          }
          ctx.restore();
        }],
      },
    };
  }

  function lineChart(parent, name, lines, yLabel, options) {
    const holder = el("div", { class: "chart", "data-chart": name });
    parent.append(holder);
    const axisColor = cssVar("--muted");
    const grid = { stroke: cssVar("--line"), width: 1 };
    const opts = {
      width: Math.max(300, holder.clientWidth || 900),
      height: 220,
      scales: { x: { time: false, range: [0, scenario.durationSeconds] }, y: options && options.y ? options.y : {} },
      axes: [
        { stroke: axisColor, grid, incrs: TIME_STEPS, space: 70, values: (u, ticks) => ticks.map(at) },
        { stroke: axisColor, grid, label: yLabel, size: 60 },
      ],
      series: [{ label: "time", value: (u, v) => (v === null ? "" : at(v)) }, ...lines.map((l, i) => ({
        label: l.label, stroke: l.color || palette[i % palette.length], width: l.width || 2, paths: l.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined, dash: l.dash, spanGaps: false,
      }))],
      plugins: [stepMarkers()],
    };
    const chart = new uPlot(opts, [series.t, ...lines.map((l) => l.values)], holder);
    charts.push({ chart, holder });
    return chart;
  }

  const vmsSection = section("vms", "VMs running over time", "Running: on a live host, in truth. Ready: as Vireo reports them. Dashed lines mark the scenario's steps.");
  lineChart(vmsSection, "vms", [
    { label: "should run", values: series.shouldRun, color: cssVar("--muted"), dash: [6, 4], width: 1 },
    { label: "running", values: series.running, color: cssVar("--ok") },
    { label: "Ready", values: series.ready, color: cssVar("--accent"), width: 1.5 },
  ], "VMs");

  // ---------------------------------------------------------------- heat map

  const heatSection = section("hosts", "Host utilization", "Each row a host, each column a sample: CPU the guests use (of physical cores) or memory allocated, from pale (idle) to red (full). Black: down; purple: cut off (isolated or partitioned); grey bar: in maintenance.");
  const heatCanvas = el("canvas", { id: "heatmap", class: "plot", role: "img", "aria-label": "Host utilization heat map" });
  const heatCaption = el("p", { class: "caption", "aria-live": "polite" }, "Point at a cell for its figures.");
  let metric = "cpu";
  const metricButtons = ["cpu", "memory"].map((m) => el("button", { type: "button", "aria-pressed": String(m === metric), "data-metric": m }, m === "cpu" ? "CPU" : "Memory"));
  const heatLegend = el("div", { class: "legend" }, [0, 25, 50, 75, 100].map((p) => {
    const sw = el("span", { class: "swatch" });
    sw.style.background = vireoCanvas.heat(p);
    return el("span", {}, sw, `${p}%`);
  }));
  heatSection.append(el("div", { class: "toolbar", role: "group", "aria-label": "metric" }, metricButtons), heatLegend, el("div", {}, heatCanvas), heatCaption);
  let describeHeat = () => "";
  const drawHeat = () => { describeHeat = vireoCanvas.drawHeatmap(heatCanvas, run, metric, at); };
  for (const b of metricButtons) {
    b.addEventListener("click", () => {
      metric = b.getAttribute("data-metric");
      for (const o of metricButtons) o.setAttribute("aria-pressed", String(o === b));
      drawHeat();
    });
  }
  heatCanvas.addEventListener("mousemove", (e) => {
    const r = heatCanvas.getBoundingClientRect();
    heatCaption.textContent = describeHeat(e.clientX - r.left, e.clientY - r.top) || "Point at a cell for its figures.";
  });

  // ---------------------------------------------------------------- Gantt

  const ganttSection = section("outages", "Outages, migrations and arrivals", "Red: a VM down until it was running and Ready again; black: down to the end of the run; blue: a live migration (orange when it failed); pale amber: a VM that arrived during the run, until it was Ready.");
  const ganttCanvas = el("canvas", { id: "gantt", class: "plot", role: "img", "aria-label": "Gantt chart of VM outages and migrations" });
  const ganttCaption = el("p", { class: "caption", "aria-live": "polite" }, "Point at a bar for its details.");
  ganttSection.append(el("div", {}, ganttCanvas), ganttCaption);
  let describeGantt = () => "";
  const drawGantt = () => { describeGantt = vireoCanvas.drawGantt(ganttCanvas, run, at); };
  ganttCanvas.addEventListener("mousemove", (e) => {
    const r = ganttCanvas.getBoundingClientRect();
    ganttCaption.textContent = describeGantt(e.clientX - r.left, e.clientY - r.top) || "Point at a bar for its details.";
  });

  if (summary.recoveries.length > 0) {
    ganttSection.append(el("h3", {}, "Recovery time per VM"), table(["VM", "priority", "cause", "from", "to", "down", "back", "recovery#"],
      summary.recoveries.map((r) => [r.vm, r.priority, r.cause, r.fromHost, r.toHost, at(r.downAt), at(r.recoveredAt), span(r.seconds)])));
    ganttSection.append(el("h3", {}, "Recovery time per priority"), table(["priority", "VMs#", "median#", "max#"],
      summary.byPriority.map((p) => [p.priority, String(p.count), span(p.medianSeconds), span(p.maxSeconds)])));
  }
  const leftDown = (title, rows) => {
    if (rows.length === 0) return;
    ganttSection.append(el("h3", {}, title), table(["VM", "priority", "down", "phase", "Ready", "why"],
      rows.map((v) => [v.vm, v.priority, v.downAt === undefined ? "" : `${at(v.downAt)} (${v.cause})`, v.phase, `${v.ready.status} ${v.ready.reason}`, v.ready.message]), () => "bad"));
  };
  leftDown("Never came back", summary.notRecovered);
  leftDown("Not running at the end", summary.notRunning);
  if (summary.arrivals.length > 0) {
    ganttSection.append(el("h3", {}, "Arrivals"), table(["object", "arrived", "Ready", "after#", "waited longest for"],
      summary.arrivals.map((a) => [a.object, at(a.arrivedAt), a.readyAt === undefined ? "never" : at(a.readyAt), a.seconds === undefined ? "" : span(a.seconds), a.waitedFor || ""]),
      (i) => (summary.arrivals[i].readyAt === undefined ? "bad" : "")));
  }

  // ---------------------------------------------------------------- migrations, imbalance, RPO

  const migSection = section("migrations", "Migrations", `${summary.migrations.length} live migration(s): ${summary.migrationTotals.succeeded} succeeded, ${summary.migrationTotals.failed} failed, ${summary.migrationTotals.cancelled} cancelled; downtime mean ${summary.migrationTotals.meanDowntimeMs} ms, max ${summary.migrationTotals.maxDowntimeMs} ms.`);
  lineChart(migSection, "migrating", [{ label: "migrations under way", values: series.migrating, stepped: true }], "under way", { y: { range: (u, min, max) => [0, Math.max(2, max)] } });
  if (summary.migrations.length > 0) {
    migSection.append(table(["VM", "from", "to", "why", "result", "started", "took#", "downtime#", "reason"], summary.migrations.map((m) => [
      m.vm, m.source, m.target, m.why, m.phase, at(m.startedAt), m.endedAt === undefined ? "" : span(m.endedAt - m.startedAt), m.downtimeMs === undefined ? "" : `${m.downtimeMs} ms`, m.reason || "",
    ]), (i) => (summary.migrations[i].phase === "Failed" ? "bad" : "")));
  }

  const imbalance = series.imbalance.filter((l) => l.values.some((v) => v !== null && v > 0));
  const imbSection = section("imbalance", "Imbalance", "The standard deviation of host load in each cluster (the larger of CPU and memory, as DRS measures it), over the hosts that take VMs.");
  if (imbalance.length > 0) lineChart(imbSection, "imbalance", imbalance.map((l) => ({ label: l.cluster, values: l.values })), "std. dev.");
  else imbSection.append(el("p", { class: "hint" }, "No cluster had two hosts with load to compare."));

  const rpoSection = section("rpo", "Replication lag", "How old each replica is (minutes since the start of its last completed sync), beside its RPO.");
  if (series.rpo.length > 0) {
    const rpos = [...new Set(series.rpo.map((r) => r.rpoSeconds))].sort((a, b) => a - b);
    lineChart(rpoSection, "rpo", [
      ...series.rpo.map((r) => ({ label: r.vm, values: r.lag.map((v) => (v === null ? null : Math.round(v / 6) / 10)) })),
      ...rpos.map((rpo) => ({ label: `RPO ${span(rpo)}`, values: series.t.map(() => rpo / 60), color: cssVar("--bad"), dash: [6, 4], width: 1 })),
    ], "minutes", { y: { range: (u, min, max) => [0, Math.max(max, rpos.at(-1) / 60) * 1.08] } });
    rpoSection.append(table(["VM", "RPO#", "max lag#", "met"], summary.rpo.map((r) => [r.vm, span(r.rpoSeconds), span(r.maxLagSeconds), r.met ? "yes" : "no"]), (i) => (summary.rpo[i].met ? "" : "bad")));
  } else rpoSection.append(el("p", { class: "hint" }, "No replicated VMs."));

  // ---------------------------------------------------------------- the timeline

  const timeline = section("timeline", "Timeline", "The scenario's steps, what Vireo recorded (events), what happened on the hosts (outages, recoveries, migrations) and, when shown, every change of an object's state.");
  const showStates = el("input", { type: "checkbox", id: "show-states" });
  timeline.append(el("div", { class: "toolbar" }, showStates, el("label", { for: "show-states" }, "show state changes")));
  const holder = el("div", { class: "scroll" });
  timeline.append(holder);
  const describe = (r) => {
    switch (r.kind) {
      case "step": return [r.summary + (r.note ? ` (${r.note})` : ""), ""];
      case "event": return [`${r.reason}: ${r.message}`, r.object];
      case "state": return [["phase", "host", "ready", "reason", "target", "downtimeMs", "tolerates"].filter((k) => r[k] !== undefined).map((k) => `${k}=${r[k]}`).join(" "), r.object];
      case "outage": return [`down on ${r.host} (${r.cause})`, r.vm];
      case "recovered": return [`running and Ready on ${r.host} after ${span(r.seconds)}`, r.vm];
      case "migration": return [`${r.why} migration ${r.source} → ${r.target}: ${r.phase}${r.downtimeMs !== undefined ? `, downtime ${r.downtimeMs} ms` : ""}`, r.vm];
      default: return [r.message || "", ""];
    }
  };
  const renderTimeline = () => {
    const rows = run.timeline.filter((r) => showStates.checked || r.kind !== "state").slice(0, 5000);
    holder.replaceChildren(table(["at", "kind", "object", "what"], rows.map((r) => {
      const [what, object] = describe(r);
      return [at(r.t), r.kind === "event" && r.type === "Warning" ? "warning" : r.kind, object, what];
    }), (i) => (rows[i].kind === "outage" || (rows[i].kind === "event" && rows[i].type === "Warning") ? "bad" : "")));
  };
  showStates.addEventListener("change", renderTimeline);
  renderTimeline();

  // ---------------------------------------------------------------- drawing and resizing

  const redraw = () => {
    drawHeat();
    drawGantt();
    for (const { chart, holder: h } of charts) chart.setSize({ width: Math.max(300, h.clientWidth), height: 220 });
  };
  redraw();
  let pending;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(redraw, 100);
  });
  document.body.setAttribute("data-drawn", "true");
})();
