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

  function keyFigures() {
    root.replaceChildren(
      el("h1", {}, `Simulation: ${scenario.name}`),
      scenario.description ? el("p", { class: "lede" }, scenario.description) : null,
      el("p", { class: "hint" }, `${scenario.file}, seed ${scenario.seed}: ${span(scenario.durationSeconds)} of simulated time from ${scenario.start}, sampled every ${span(scenario.sampleSeconds)}. Times are shown from the start of the run.`),
    );
    const down = summary.recoveries.length + summary.notRecovered.length;
    const slowest = summary.recoveries.reduce((m, r) => Math.max(m, r.seconds), 0);
    const missed = summary.rpo.filter((r) => !r.met).length;
    const cpu = summary.peakUtilization.cpu;
    root.append(el("div", { class: "cards" },
      card(`${summary.vms.runningAtEnd} / ${summary.vms.shouldRun}`, "VMs running at the end / that should run"),
      card(String(down), "VM outages"),
      card(summary.recoveries.length > 0 ? span(slowest) : "–", "slowest recovery"),
      card(String(summary.notRecovered.length), "never came back", summary.notRecovered.length > 0 ? "bad" : "ok"),
      card(String(summary.migrations.length), `migrations (max downtime ${summary.migrationTotals.maxDowntimeMs} ms)`),
      rpoCard(missed),
      card(cpu ? `${cpu.percent}%` : "–", cpu ? `peak CPU (${cpu.host})` : "peak CPU"),
      card(String(summary.splitBrainAttempts), "split-brain attempts", summary.splitBrainAttempts === 0 ? "ok" : "bad"),
    ));
    root.append(el("h3", {}, "Steps"), scenario.steps.length === 0 ? el("p", { class: "hint" }, "No steps: the fleet alone.")
      : table(["at", "step", "note"], scenario.steps.map((s) => [at(s.at), s.summary, s.note || ""])));
  }

  function rpoCard(missed) {
    if (summary.rpo.length === 0) return card("–", "RPO");
    return missed === 0 ? card("met", "RPO", "ok") : card(`${missed} missed`, "RPO", "bad");
  }

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

  /** A uPlot chart of `spec.lines` over the run, in `parent`: spec is {name, lines, yLabel, y?}. */
  function lineChart(parent, spec) {
    const holder = el("div", { class: "chart", "data-chart": spec.name });
    parent.append(holder);
    const axisColor = cssVar("--muted");
    const grid = { stroke: cssVar("--line"), width: 1 };
    const opts = {
      width: Math.max(300, holder.clientWidth || 900),
      height: 220,
      scales: { x: { time: false, range: [0, scenario.durationSeconds] }, y: spec.y || {} },
      axes: [
        { stroke: axisColor, grid, incrs: TIME_STEPS, space: 70, values: (u, ticks) => ticks.map(at) },
        { stroke: axisColor, grid, label: spec.yLabel, size: 60 },
      ],
      series: [{ label: "time", value: (u, v) => (v === null ? "" : at(v)) }, ...spec.lines.map((l, i) => ({
        label: l.label, stroke: l.color || palette[i % palette.length], width: l.width || 2, paths: l.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined, dash: l.dash, spanGaps: false,
      }))],
      plugins: [stepMarkers()],
    };
    charts.push({ chart: new uPlot(opts, [series.t, ...spec.lines.map((l) => l.values)], holder), holder });
  }

  function vmsChart() {
    const s = section("vms", "VMs running over time", "Running: on a live host, in truth. Ready: as Vireo reports them. Dashed lines mark the scenario's steps.");
    lineChart(s, { name: "vms", yLabel: "VMs", lines: [
      { label: "should run", values: series.shouldRun, color: cssVar("--muted"), dash: [6, 4], width: 1 },
      { label: "running", values: series.running, color: cssVar("--ok") },
      { label: "Ready", values: series.ready, color: cssVar("--accent"), width: 1.5 },
    ] });
  }

  // ---------------------------------------------------------------- canvas charts (canvas.js)

  /** A canvas chart with a caption that describes what the pointer is over; returns its redraw. */
  function canvasChart(parent, spec) {
    const canvas = el("canvas", { id: spec.id, class: "plot", role: "img", "aria-label": spec.label });
    const caption = el("p", { class: "caption", "aria-live": "polite" }, spec.hint);
    parent.append(el("div", {}, canvas), caption);
    let describe = () => "";
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      caption.textContent = describe(e.clientX - r.left, e.clientY - r.top) || spec.hint;
    });
    return () => { describe = spec.draw(canvas); };
  }

  function heatMap() {
    const s = section("hosts", "Host utilization", "Each row a host, each column a sample: CPU the guests use (of physical cores) or memory allocated, from pale (idle) to red (full). Black: down; purple: cut off (isolated or partitioned); grey bar: in maintenance.");
    let metric = "cpu";
    const buttons = ["cpu", "memory"].map((m) => el("button", { type: "button", "aria-pressed": String(m === metric), "data-metric": m }, m === "cpu" ? "CPU" : "Memory"));
    const legend = el("div", { class: "legend" }, [0, 25, 50, 75, 100].map((p) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = vireoCanvas.heat(p);
      return el("span", {}, swatch, `${p}%`);
    }));
    s.append(el("div", { class: "toolbar", role: "group", "aria-label": "metric" }, buttons), legend);
    const draw = canvasChart(s, { id: "heatmap", label: "Host utilization heat map", hint: "Point at a cell for its figures.", draw: (canvas) => vireoCanvas.drawHeatmap(canvas, run, metric, at) });
    for (const b of buttons) {
      b.addEventListener("click", () => {
        metric = b.getAttribute("data-metric");
        for (const o of buttons) o.setAttribute("aria-pressed", String(o === b));
        draw();
      });
    }
    return draw;
  }

  function ganttChart() {
    const s = section("outages", "Outages, migrations and arrivals", "Red: a VM down until it was running and Ready again; black: down to the end of the run; blue: a live migration (orange when it failed); pale amber: a VM that arrived during the run, until it was Ready.");
    const draw = canvasChart(s, { id: "gantt", label: "Gantt chart of VM outages, migrations and arrivals", hint: "Point at a bar for its details.", draw: (canvas) => vireoCanvas.drawGantt(canvas, run, at) });
    if (summary.recoveries.length > 0) {
      s.append(el("h3", {}, "Recovery time per VM"), table(["VM", "priority", "cause", "from", "to", "down", "back", "recovery#"],
        summary.recoveries.map((r) => [r.vm, r.priority, r.cause, r.fromHost, r.toHost, at(r.downAt), at(r.recoveredAt), span(r.seconds)])));
      s.append(el("h3", {}, "Recovery time per priority"), table(["priority", "VMs#", "median#", "max#"],
        summary.byPriority.map((p) => [p.priority, String(p.count), span(p.medianSeconds), span(p.maxSeconds)])));
    }
    leftDown(s, "Never came back", summary.notRecovered);
    leftDown(s, "Not running at the end", summary.notRunning);
    if (summary.arrivals.length > 0) {
      s.append(el("h3", {}, "Arrivals"), table(["object", "arrived", "Ready", "after#", "waited longest for"],
        summary.arrivals.map((a) => [a.object, at(a.arrivedAt), a.readyAt === undefined ? "never" : at(a.readyAt), a.seconds === undefined ? "" : span(a.seconds), a.waitedFor || ""]),
        (i) => (summary.arrivals[i].readyAt === undefined ? "bad" : "")));
    }
    return draw;
  }

  function leftDown(parent, title, rows) {
    if (rows.length === 0) return;
    parent.append(el("h3", {}, title), table(["VM", "priority", "down", "phase", "Ready", "why"],
      rows.map((v) => [v.vm, v.priority, v.downAt === undefined ? "" : `${at(v.downAt)} (${v.cause})`, v.phase, `${v.ready.status} ${v.ready.reason}`, v.ready.message]), () => "bad"));
  }

  // ---------------------------------------------------------------- migrations, imbalance, RPO

  function migrations() {
    const t = summary.migrationTotals;
    const s = section("migrations", "Migrations", `${summary.migrations.length} live migration(s): ${t.succeeded} succeeded, ${t.failed} failed, ${t.cancelled} cancelled; downtime mean ${t.meanDowntimeMs} ms, max ${t.maxDowntimeMs} ms.`);
    lineChart(s, { name: "migrating", yLabel: "under way", lines: [{ label: "migrations under way", values: series.migrating, stepped: true }], y: { range: (u, min, max) => [0, Math.max(2, max)] } });
    if (summary.migrations.length === 0) return;
    s.append(table(["VM", "from", "to", "why", "result", "started", "took#", "downtime#", "reason"], summary.migrations.map((m) => [
      m.vm, m.source, m.target, m.why, m.phase, at(m.startedAt), m.endedAt === undefined ? "" : span(m.endedAt - m.startedAt), m.downtimeMs === undefined ? "" : `${m.downtimeMs} ms`, m.reason || "",
    ]), (i) => (summary.migrations[i].phase === "Failed" ? "bad" : "")));
  }

  function imbalance() {
    const lines = series.imbalance.filter((l) => l.values.some((v) => v !== null && v > 0));
    const s = section("imbalance", "Imbalance", "The standard deviation of host load in each cluster (the larger of CPU and memory, as DRS measures it), over the hosts that take VMs.");
    if (lines.length > 0) lineChart(s, { name: "imbalance", yLabel: "std. dev.", lines: lines.map((l) => ({ label: l.cluster, values: l.values })) });
    else s.append(el("p", { class: "hint" }, "No cluster had two hosts with load to compare."));
  }

  function replicationLag() {
    const s = section("rpo", "Replication lag", "How old each replica is (minutes since the start of its last completed sync), beside its RPO.");
    if (series.rpo.length === 0) {
      s.append(el("p", { class: "hint" }, "No replicated VMs."));
      return;
    }
    const rpos = [...new Set(series.rpo.map((r) => r.rpoSeconds))].sort((a, b) => a - b);
    lineChart(s, { name: "rpo", yLabel: "minutes", y: { range: (u, min, max) => [0, Math.max(max, rpos.at(-1) / 60) * 1.08] }, lines: [
      ...series.rpo.map((r) => ({ label: r.vm, values: r.lag.map((v) => (v === null ? null : Math.round(v / 6) / 10)) })),
      ...rpos.map((rpo) => ({ label: `RPO ${span(rpo)}`, values: series.t.map(() => rpo / 60), color: cssVar("--bad"), dash: [6, 4], width: 1 })),
    ] });
    s.append(table(["VM", "RPO#", "max lag#", "met"], summary.rpo.map((r) => [r.vm, span(r.rpoSeconds), span(r.maxLagSeconds), r.met ? "yes" : "no"]), (i) => (summary.rpo[i].met ? "" : "bad")));
  }

  // ---------------------------------------------------------------- the timeline

  const STATE_FIELDS = ["phase", "host", "ready", "reason", "message", "target", "downtimeMs", "tolerates"];

  /** A record as [what, object]. */
  function describeRecord(r) {
    switch (r.kind) {
      case "step": return [r.summary + (r.note ? ` (${r.note})` : ""), ""];
      case "event": return [`${r.reason}: ${r.message}`, r.object];
      case "state": return [STATE_FIELDS.filter((k) => r[k] !== undefined).map((k) => `${k}=${r[k]}`).join(" "), r.object];
      case "outage": return [`down on ${r.host} (${r.cause})`, r.vm];
      case "recovered": return [`running and Ready on ${r.host} after ${span(r.seconds)}`, r.vm];
      case "migration": return [`${r.why} migration ${r.source} → ${r.target}: ${r.phase}${r.downtimeMs !== undefined ? `, downtime ${r.downtimeMs} ms` : ""}`, r.vm];
      default: return [r.message || "", ""];
    }
  }

  function timeline() {
    const s = section("timeline", "Timeline", "The scenario's steps, what Vireo recorded (events), what happened on the hosts (outages, recoveries, migrations) and, when shown, every change of an object's state.");
    const showStates = el("input", { type: "checkbox", id: "show-states" });
    const holder = el("div", { class: "scroll" });
    s.append(el("div", { class: "toolbar" }, showStates, el("label", { for: "show-states" }, "show state changes")), holder);
    const warning = (r) => r.kind === "outage" || (r.kind === "event" && r.type === "Warning");
    const render = () => {
      const rows = run.timeline.filter((r) => showStates.checked || r.kind !== "state").slice(0, 5000);
      holder.replaceChildren(table(["at", "kind", "object", "what"], rows.map((r) => {
        const [what, object] = describeRecord(r);
        return [at(r.t), r.kind === "event" && r.type === "Warning" ? "warning" : r.kind, object, what];
      }), (i) => (warning(rows[i]) ? "bad" : "")));
    };
    showStates.addEventListener("change", render);
    render();
  }

  // ---------------------------------------------------------------- the page

  keyFigures();
  vmsChart();
  const drawHeat = heatMap();
  const drawGantt = ganttChart();
  migrations();
  imbalance();
  replicationLag();
  timeline();
  const redraw = () => {
    drawHeat();
    drawGantt();
    for (const { chart, holder } of charts) chart.setSize({ width: Math.max(300, holder.clientWidth), height: 220 });
  };
  redraw();
  let pending;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(redraw, 100);
  });
  document.body.setAttribute("data-drawn", "true");
})();
