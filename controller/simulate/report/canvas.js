// The report's two hand-drawn charts, on canvas: host use as a heat map (a row per host, a column per
// sample) and a Gantt chart of each VM's outages and migrations. Names are drawn with fillText, so nothing
// from the run is ever parsed as HTML. Plain browser script, no build step; defines globalThis.vireoCanvas.
"use strict";

(function () {
  const LABEL_WIDTH = 150;
  const AXIS_HEIGHT = 22;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  /** A canvas sized for the screen's pixel ratio; returns its 2D context in CSS pixels. */
  function prepare(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.max(1, Math.round(height * ratio));
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = css("--panel");
    ctx.fillRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    return ctx;
  }

  /** Use 0 % → pale blue, 50 % → amber, 100 % → red. */
  function heat(percent) {
    const v = Math.max(0, Math.min(100, percent)) / 100;
    const hue = 210 - 210 * v;
    const light = 90 - 45 * v;
    return `hsl(${hue}, ${55 + 25 * v}%, ${light}%)`;
  }

  /** Time-axis steps a person counts in, seconds. */
  const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

  /** Ticks and labels under a chart; `area` is {x0, width, top, bottom, duration}. */
  function timeAxis(ctx, area, fmt) {
    const { x0, width, duration } = area;
    const y = area.bottom + 2;
    ctx.fillStyle = css("--muted");
    ctx.textAlign = "center";
    const most = Math.max(2, Math.floor(width / 80));
    const step = TIME_STEPS.find((s) => duration / s <= most) || duration;
    for (let t = 0; t <= duration + 1e-9; t += step) {
      const x = x0 + (width * t) / duration;
      ctx.fillRect(x, y, 1, 4);
      ctx.fillText(fmt(t), Math.min(Math.max(x, x0 + 20), x0 + width - 20), y + 12);
    }
    ctx.textAlign = "left";
  }

  function stepLines(ctx, steps, area) {
    const { x0, width, top, bottom, duration } = area;
    ctx.strokeStyle = css("--accent");
    ctx.setLineDash([4, 3]);
    for (const s of steps) {
      const x = x0 + (width * s.at) / duration;
      ctx.beginPath();
      ctx.moveTo(x + 0.5, top);
      ctx.lineTo(x + 0.5, bottom);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  /** `text` at (x, y), cut with an ellipsis to `maxWidth`. */
  function label(ctx, text, at) {
    const { x, y, maxWidth } = at;
    let shown = text;
    while (shown.length > 3 && ctx.measureText(shown).width > maxWidth) shown = shown.slice(0, -2);
    if (shown !== text) shown = `${shown.slice(0, -1)}…`;
    ctx.fillText(shown, x, y);
  }

  /**
   * Host use over time. `metric` is "cpu" or "memory". Returns a function mapping a mouse position to a
   * description of the cell under it, for the caption.
   */
  function drawHeatmap(canvas, run, metric, fmt) {
    const hosts = run.series.hosts;
    const times = run.series.t;
    const rowHeight = 16;
    const clusters = [];
    for (const h of hosts) if (!clusters.includes(h.cluster)) clusters.push(h.cluster);
    const rows = [];
    for (const c of clusters) {
      rows.push({ cluster: c });
      for (const h of hosts) if (h.cluster === c) rows.push({ host: h });
    }
    const width = canvas.parentElement.clientWidth || 900;
    const height = rows.length * rowHeight + AXIS_HEIGHT + 4;
    const ctx = prepare(canvas, width, height);
    const plotWidth = width - LABEL_WIDTH - 8;
    const duration = run.scenario.durationSeconds;
    const xOf = (t) => LABEL_WIDTH + (plotWidth * t) / duration;
    rows.forEach((row, r) => {
      const y = r * rowHeight;
      ctx.fillStyle = css("--fg");
      if (row.cluster !== undefined) {
        ctx.font = "600 12px system-ui, sans-serif";
        label(ctx, row.cluster === "" ? "(no cluster)" : `cluster ${row.cluster}`, { x: 4, y: y + rowHeight / 2, maxWidth: LABEL_WIDTH - 8 });
        ctx.font = "12px system-ui, sans-serif";
        return;
      }
      label(ctx, row.host.name, { x: 14, y: y + rowHeight / 2, maxWidth: LABEL_WIDTH - 20 });
      const values = row.host[metric];
      for (let i = 0; i < times.length; i++) {
        const state = row.host.state[i];
        if (state === null) continue;
        const x = xOf(times[i]);
        const next = i + 1 < times.length ? xOf(times[i + 1]) : LABEL_WIDTH + plotWidth;
        ctx.fillStyle = state === "Down" ? css("--down") : state === "Isolated" || state === "Partitioned" ? css("--cut") : heat(values[i] ?? 0);
        ctx.fillRect(x, y + 1, Math.max(1, next - x + 0.6), rowHeight - 2);
        if (state === "Maintenance") {
          ctx.fillStyle = css("--maint");
          ctx.fillRect(x, y + rowHeight - 5, Math.max(1, next - x), 3);
        }
      }
    });
    const area = { x0: LABEL_WIDTH, width: plotWidth, top: 0, bottom: rows.length * rowHeight, duration };
    stepLines(ctx, run.scenario.steps, area);
    timeAxis(ctx, area, fmt);
    return (mx, my) => {
      const row = rows[Math.floor(my / rowHeight)];
      if (!row || !row.host || mx < LABEL_WIDTH) return "";
      const t = ((mx - LABEL_WIDTH) / plotWidth) * duration;
      let i = 0;
      while (i + 1 < times.length && times[i + 1] <= t) i++;
      const h = row.host;
      if (h.state[i] === null) return `${h.name} at ${fmt(times[i])}: not in the fleet yet`;
      const cpu = h.cpu[i] === null ? "n/a" : `${h.cpu[i]}%`;
      const mem = h.memory[i] === null ? "n/a" : `${h.memory[i]}%`;
      return `${h.name} at ${fmt(times[i])}: ${h.state[i]}, CPU ${cpu} of ${h.cores} cores, memory allocated ${mem}`;
    };
  }

  /**
   * Each VM that went down, moved or arrived: its outages (red; dark when it never came back), migrations
   * (blue) and, for a VM that arrived during the run, the wait from its arrival to Ready (amber).
   */
  function ganttRows(run, fmt) {
    const byVm = new Map();
    const row = (vm) => {
      if (!byVm.has(vm)) byVm.set(vm, { vm, outages: [], migrations: [], waits: [], first: Infinity });
      return byVm.get(vm);
    };
    const end = run.scenario.durationSeconds;
    for (const r of run.summary.recoveries) {
      const g = row(r.vm);
      g.outages.push({ from: r.downAt, to: r.recoveredAt, recovered: true, text: `${r.vm}: down ${fmt(r.downAt)} (${r.cause} on ${r.fromHost}), back ${fmt(r.recoveredAt)} on ${r.toHost}: ${r.seconds}s` });
      g.first = Math.min(g.first, r.downAt);
    }
    for (const r of run.summary.notRecovered) {
      const g = row(r.vm);
      g.outages.push({ from: r.downAt, to: end, recovered: false, text: `${r.vm}: down ${fmt(r.downAt)} (${r.cause}), never came back: ${r.ready.reason} ${r.ready.message}` });
      g.first = Math.min(g.first, r.downAt);
    }
    for (const a of run.summary.arrivals) {
      if (!a.object.startsWith("VirtualMachine/")) continue;
      const g = row(a.object.slice("VirtualMachine/".length));
      const to = a.readyAt ?? end;
      g.waits.push({ from: a.arrivedAt, to, text: `${g.vm}: arrived ${fmt(a.arrivedAt)}, ${a.readyAt === undefined ? "never Ready" : `Ready ${fmt(a.readyAt)}`}${a.waitedFor ? `; waited for: ${a.waitedFor}` : ""}` });
      g.first = Math.min(g.first, a.arrivedAt);
    }
    for (const m of run.summary.migrations) {
      const g = row(m.vm);
      g.migrations.push({ from: m.startedAt, to: m.endedAt ?? end, ok: m.phase === "Succeeded", text: `${m.vm}: ${m.why} migration ${m.source} → ${m.target}, ${m.phase}${m.downtimeMs !== undefined ? `, downtime ${m.downtimeMs} ms` : ""}${m.reason ? ` (${m.reason})` : ""}` });
      g.first = Math.min(g.first, m.startedAt);
    }
    return [...byVm.values()].sort((a, b) => a.first - b.first || (a.vm < b.vm ? -1 : 1));
  }

  function drawGantt(canvas, run, fmt) {
    const rows = ganttRows(run, fmt).slice(0, 300);
    const rowHeight = 18;
    const width = canvas.parentElement.clientWidth || 900;
    const height = Math.max(1, rows.length) * rowHeight + AXIS_HEIGHT + 4;
    const ctx = prepare(canvas, width, height);
    const plotWidth = width - LABEL_WIDTH - 8;
    const duration = run.scenario.durationSeconds;
    const xOf = (t) => LABEL_WIDTH + (plotWidth * t) / duration;
    if (rows.length === 0) {
      ctx.fillStyle = css("--muted");
      ctx.fillText("No VM went down, migrated or arrived.", LABEL_WIDTH, rowHeight / 2);
    }
    const boxes = [];
    rows.forEach((g, r) => {
      const y = r * rowHeight;
      ctx.fillStyle = css("--line");
      ctx.fillRect(LABEL_WIDTH, y + rowHeight - 1, plotWidth, 1);
      ctx.fillStyle = css("--fg");
      label(ctx, g.vm, { x: 4, y: y + rowHeight / 2, maxWidth: LABEL_WIDTH - 8 });
      for (const a of g.waits) {
        const x = xOf(a.from);
        const w = Math.max(2, xOf(a.to) - x);
        ctx.fillStyle = css("--warn");
        ctx.globalAlpha = 0.55;
        ctx.fillRect(x, y + 3, w, rowHeight - 6);
        ctx.globalAlpha = 1;
        boxes.push({ x, y, w, text: a.text });
      }
      for (const o of g.outages) {
        const x = xOf(o.from);
        const w = Math.max(2, xOf(o.to) - x);
        ctx.fillStyle = o.recovered ? css("--bad") : css("--down");
        ctx.fillRect(x, y + 3, w, rowHeight - 6);
        boxes.push({ x, y, w, text: o.text });
      }
      for (const m of g.migrations) {
        const x = xOf(m.from);
        const w = Math.max(3, xOf(m.to) - x);
        ctx.fillStyle = m.ok ? css("--accent") : css("--warn");
        ctx.fillRect(x, y + 6, w, rowHeight - 12);
        boxes.push({ x, y, w, text: m.text });
      }
    });
    const area = { x0: LABEL_WIDTH, width: plotWidth, top: 0, bottom: Math.max(1, rows.length) * rowHeight, duration };
    stepLines(ctx, run.scenario.steps, area);
    timeAxis(ctx, area, fmt);
    return (mx, my) => {
      const hit = boxes.find((b) => mx >= b.x - 2 && mx <= b.x + b.w + 2 && my >= b.y && my < b.y + rowHeight);
      return hit ? hit.text : "";
    };
  }

  globalThis.vireoCanvas = { drawHeatmap, drawGantt, heat };
})();
