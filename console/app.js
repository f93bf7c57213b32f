// The Vireo console: a read-only view of the fleet, kept live by the controller's stream of changes.
// The first paint comes from one snapshot (/api/fleet); then /api/stream sends only what changed, and each
// batch is applied to the model in place. A gap in the sequence, or a stream that says "reset", means
// the snapshot is fetched again. Nothing here writes: the server answers GET alone.

import { render } from "./vendor/preact.mjs";
import { useCallback, useEffect, useMemo, useRef, useState } from "./vendor/hooks.mjs";
import { HOST, PHASE, applyChanges, createModel, sortedKeys } from "./model.js";
import { matches, parseFilter } from "./filter.js";
import { html, plural } from "./format.js";
import { Fleet } from "./fleet.js";
import { VmFilter, VmList } from "./vm-list.js";
import { VmDetail } from "./vm-detail.js";
import { EventList } from "./events.js";

/** Batches arriving within this many ms are drawn together. */
const DRAW_MS = 50;
const RETRY_MS = 2000;

/** The fleet, live: the model, the connection's state, and the VMs that changed since the last draw. */
function useFleet() {
  const [view, setView] = useState({ model: undefined, version: 0, touched: new Set() });
  const [connection, setConnection] = useState("connecting");
  const [error, setError] = useState("");
  useEffect(() => {
    let model;
    let stream;
    let timer = 0;
    let stopped = false;
    let touched = new Set();
    const draw = () => {
      timer = 0;
      const changed = touched;
      touched = new Set();
      setView((v) => ({ model, version: v.version + 1, touched: changed }));
    };
    const later = () => { if (!timer) timer = setTimeout(draw, DRAW_MS); };
    const restart = () => {
      stream?.close();
      stream = undefined;
      if (!stopped) setTimeout(connect, RETRY_MS);
    };
    const onChanges = (event) => {
      const changes = JSON.parse(event.data);
      if (changes.seq <= model.seq) return;
      if (changes.seq !== model.seq + 1) { restartNow(); return; }
      for (const key of applyChanges(model, changes)) touched.add(key);
      later();
    };
    const restartNow = () => {
      stream?.close();
      stream = undefined;
      connect();
    };
    async function connect() {
      if (stopped) return;
      try {
        const res = await fetch("/api/fleet", { headers: { accept: "application/json" } });
        if (!res.ok) throw new Error(`the fleet could not be read: HTTP ${res.status}`);
        const snapshot = await res.json();
        model = createModel(snapshot);
        setError("");
        draw();
        stream = new EventSource(`/api/stream?epoch=${encodeURIComponent(snapshot.epoch)}&since=${snapshot.seq}`);
        stream.addEventListener("open", () => setConnection("live"));
        stream.addEventListener("error", () => {
          if (stream?.readyState === EventSource.CLOSED) { setConnection("offline"); restart(); }
          else setConnection("reconnecting");
        });
        stream.addEventListener("changes", onChanges);
        stream.addEventListener("reset", restartNow);
      } catch (e) {
        setError(e.message);
        setConnection("offline");
        restart();
      }
    }
    connect();
    return () => { stopped = true; stream?.close(); clearTimeout(timer); };
  }, []);
  return { ...view, connection, error };
}

function App() {
  const { model, version, touched, connection, error } = useFleet();
  const [filterText, setFilterText] = useState("");
  const [eventFilter, setEventFilter] = useState("");
  const [selected, setSelected] = useState(undefined);
  const [detailVersion, setDetailVersion] = useState(0);
  const filterInput = useRef(null);
  const vmsSection = useRef(null);

  useEffect(() => { if (selected && touched.has(selected)) setDetailVersion((v) => v + 1); }, [touched, selected]);

  const keys = useMemo(() => (model ? sortedKeys(model) : []), [model, model?.keysVersion]);
  const filter = useMemo(() => parseFilter(filterText), [filterText]);
  const shownKeys = useMemo(
    () => (model && !filter.empty ? keys.filter((k) => matches(filter, model.vms.get(k), model.labelSets)) : keys),
    [keys, filter, model, model?.vmsVersion],
  );
  const liveEvents = useMemo(() => {
    if (!model || !selected) return [];
    const object = `VirtualMachine/${selected}`;
    return model.events.filter((e) => e.o === object);
  }, [model, model?.eventsVersion, selected]);

  const showHost = useCallback((host) => {
    setFilterText(`host:${host}`);
    vmsSection.current?.scrollIntoView({ block: "start" });
  }, []);
  const select = useCallback((key) => setSelected(key), []);

  useEffect(() => {
    const onKey = (event) => {
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
      if (event.key === "/" && !typing) { event.preventDefault(); filterInput.current?.focus(); }
      else if (event.key === "Escape") setSelected(undefined);
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);

  if (!model) {
    return html`<${Header} connection=${connection} />
      <main id="main"><p class=${error ? "error" : "empty"} role=${error ? "alert" : "status"}>${error || "Loading the fleet…"}</p></main>`;
  }
  return html`<${Header} connection=${connection} model=${model} version=${version} />
    <main id="main">
      ${error ? html`<p class="error" role="alert">${error}</p>` : null}
      ${model.standby ? html`<p class="notice" role="status">This replica stands by for the leader lease and reconciles nothing: the leader's console shows the fleet.</p>` : null}
      <${Fleet} model=${model} version=${version} onHost=${showHost} onVm=${select} selected=${selected} />
      <section class="vms" ref=${vmsSection} aria-labelledby="vms-title">
        <h2 id="vms-title">Virtual machines</h2>
        <${VmFilter} value=${filterText} onInput=${setFilterText} shown=${shownKeys.length} total=${keys.length} inputRef=${filterInput} unknown=${filter.unknown} />
        <div class="vm-split">
          <div class="vm-table">
            <div class="vm-row vm-head" aria-hidden="true"><span>Name</span><span>Phase</span><span>Host</span><span>Cluster</span><span>Owner</span><span>Lab</span><span></span></div>
            <${VmList} model=${model} version=${version} keys=${shownKeys} selected=${selected} onSelect=${select} />
          </div>
          <${VmDetail} vmKey=${selected} version=${detailVersion} liveEvents=${liveEvents} now=${model.now} onClose=${() => setSelected(undefined)} />
        </div>
      </section>
      <${EventList} events=${model.events} version=${model.eventsVersion} filter=${eventFilter} onFilter=${setEventFilter} now=${model.now} onVm=${select} />
    </main>`;
}

function Header({ connection, model }) {
  let summary = "";
  if (model) {
    let failed = 0;
    for (const host of model.hosts.values()) if (host.p !== "Ready" && host.p !== "Maintenance") failed += 1;
    let running = 0;
    for (const row of model.vms.values()) if (row[PHASE] === "Running" && row[HOST]) running += 1;
    summary = `${plural(model.hosts.size, "host")}${failed ? ` (${failed} not ready)` : ""} · ${running}/${plural(model.vms.size, "VM")} running`;
  }
  return html`<header class="top">
    <a class="skip" href="#main">Skip to the fleet</a>
    <h1>Vireo</h1>
    ${model ? html`<span class="mode">${model.mode === "api" ? "API mode" : "file mode"}</span>` : null}
    <span class="summary" data-role="summary">${summary}</span>
    <span class=${`connection connection-${connection}`} role="status" data-role="connection">${connection}</span>
    <nav aria-label="Sections"><a href="#fleet-title">Fleet</a><a href="#vms-title">VMs</a><a href="#events-title">Events</a></nav>
  </header>`;
}

const root = document.getElementById("app");
root.replaceChildren();
render(html`<${App} />`, root);
