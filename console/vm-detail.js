// A VM's detail: what `vireo get vm -o yaml` says, readable — where it runs, its labels and owner, its
// conditions, what is in flight (a migration's rounds and progress, the replica's lag, fault tolerance's
// secondary, a failover's attempts), the drift patch, and its recent events. Fetched from
// /api/vms/{namespace}/{name} when selected, and again whenever the stream says the VM changed.

import { useEffect, useState } from "./vendor/hooks.mjs";
import { ago, clockTime, gib, html, plural, tone } from "./format.js";

export function VmDetail({ vmKey: key, version, liveEvents, now, onClose }) {
  const [detail, setDetail] = useState(undefined);
  const [error, setError] = useState("");
  useEffect(() => {
    if (!key) return undefined;
    const controller = new AbortController();
    const [namespace, name] = key.split("/");
    fetch(`/api/vms/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, { signal: controller.signal })
      .then(async (res) => {
        if (res.status === 404) throw new Error(`${key} no longer exists`);
        if (!res.ok) throw new Error(`the console could not read ${key}: HTTP ${res.status}`);
        setDetail(await res.json());
        setError("");
      })
      .catch((e) => { if (e.name !== "AbortError") setError(e.message); });
    return () => controller.abort();
  }, [key, version]);

  if (!key) return html`<aside class="detail" aria-label="VM detail"><p class="empty">Select a VM to see its conditions, what is in flight, its drift and its events.</p></aside>`;
  const vm = detail && `${detail.vm.metadata.namespace}/${detail.vm.metadata.name}` === key ? detail.vm : undefined;
  return html`<aside class="detail" aria-labelledby="detail-title" data-vm=${key}>
    <header class="detail-head">
      <h3 id="detail-title">${key}</h3>
      <button class="close" onClick=${onClose} aria-label="Close the detail">×</button>
    </header>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${vm ? html`<${Summary} vm=${vm} />
      <${InFlight} vm=${vm} now=${now} />
      <${Conditions} conditions=${vm.status.conditions ?? []} now=${now} />
      <${Drift} drift=${vm.status.drift} />
      <${Events} events=${mergeEvents(detail.events, liveEvents)} now=${now} />` : error ? null : html`<p class="empty">Loading…</p>`}
  </aside>`;
}

function Summary({ vm }) {
  const s = vm.status;
  const labels = Object.entries(vm.metadata.labels);
  return html`<dl class="facts-list">
    <dt>Phase</dt><dd><span class=${`phase tone-${tone(s.phase ?? "Pending")}`} data-role="detail-phase">${s.phase ?? "Pending"}</span></dd>
    <dt>Host</dt><dd data-role="detail-host">${s.host ?? "—"}</dd>
    <dt>Cluster</dt><dd>${vm.spec.placement.cluster}</dd>
    <dt>Size</dt><dd>${vm.spec.cpu} vCPU, ${gib(vm.spec.memoryMiB)}</dd>
    <dt>Run strategy</dt><dd>${vm.spec.runStrategy}</dd>
    <dt>Owner</dt><dd data-role="detail-owner">${vm.spec.owner ?? "—"}</dd>
    ${vm.metadata.owners.length ? html`<dt>Owned by</dt><dd>${vm.metadata.owners.join(", ")}</dd>` : null}
    ${s.restarts ? html`<dt>Restarts</dt><dd>${s.restarts}</dd>` : null}
    ${s.lastExit ? html`<dt>Last exit</dt><dd>${s.lastExit.reason} at ${clockTime(s.lastExit.time)}</dd>` : null}
    <dt>Labels</dt>
    <dd><ul class="labels" data-role="detail-labels">${labels.length ? labels.map(([k, v]) => html`<li class="label">${k}=${v}</li>`) : html`<li>none</li>`}</ul></dd>
  </dl>`;
}

function InFlight({ vm, now }) {
  const s = vm.status;
  const migrating = s.phase === "Migrating" ? s.conditions?.find((c) => c.type === "Ready")?.message : undefined;
  const items = [
    ...vm.migrations.map((m) => ["migration", migrationText(m)]),
    migrating ? ["migration", `Live migration: ${migrating}`] : undefined,
    s.lastFailover ? ["failover", failoverText(s.lastFailover, now)] : undefined,
    s.replication ? ["replication", replicationText(s.replication, now)] : undefined,
    s.faultTolerance ? ["fault-tolerance", faultToleranceText(s.faultTolerance, now)] : undefined,
  ].filter(Boolean);
  return html`<section class="inflight" aria-labelledby="inflight-title">
    <h4 id="inflight-title">In flight</h4>
    ${items.length ? html`<ul>${items.map(([kind, text]) => html`<li data-inflight=${kind}>${text}</li>`)}</ul>` : html`<p class="empty">Nothing in flight.</p>`}
  </section>`;
}

function migrationText(m) {
  const parts = [`Migration ${m.name} (${m.mode}): ${m.phase ?? "Pending"}`];
  if (m.sourceHost || m.targetHost) parts.push(`${m.sourceHost ?? "?"} → ${m.targetHost ?? "?"}`);
  if (m.rounds !== undefined) parts.push(`round ${m.rounds}${m.estimatedRounds ? ` of about ${m.estimatedRounds}` : ""}`);
  if (m.transferredMiB !== undefined) parts.push(`${Math.round(m.transferredMiB)} MiB sent`);
  if (m.remainingMiB !== undefined) parts.push(`${Math.round(m.remainingMiB)} MiB to go`);
  if (m.downtimeMs !== undefined) parts.push(`${m.downtimeMs} ms downtime`);
  if (m.attempts) parts.push(plural(m.attempts, "attempt"));
  return parts.join(", ") + (m.failureReason ? ` — ${m.failureReason}` : "");
}

function failoverText(f, now) {
  const where = f.toHost ? `from ${f.fromHost} to ${f.toHost}` : `from ${f.fromHost} (restarting)`;
  const last = f.lastAttempt ? `, last attempt ${ago(f.lastAttempt, now)}` : "";
  return `Failover ${where}: ${f.reason}, ${plural(f.attempts, "attempt")}, failed ${ago(f.failedAt, now)}${last}`;
}

function replicationText(r, now) {
  const lag = r.lagSeconds !== undefined ? `${Math.round(r.lagSeconds)} s` : "unknown";
  const sync = r.lastSyncTime ? `, last sync ${ago(r.lastSyncTime, now)}` : "";
  return `Replication to ${r.targetCluster}: ${r.state}, lag ${lag} of an RPO of ${r.rpoSeconds} s${r.rpoViolated ? " — RPO violated" : ""}${sync}`;
}

function faultToleranceText(ft, now) {
  const parts = [`Fault tolerance: ${ft.state}`];
  if (ft.secondaryHost) parts.push(`secondary on ${ft.secondaryHost}`);
  if (ft.lagMs !== undefined) parts.push(`${ft.lagMs} ms behind`);
  if (ft.slowdownPercent) parts.push(`primary slowed ${ft.slowdownPercent} %`);
  if (ft.switchovers) parts.push(`${plural(ft.switchovers, "switch-over")}, the last ${ago(ft.lastSwitchover.time, now)} from ${ft.lastSwitchover.from}`);
  if (ft.state !== "Protected" && ft.unprotectedSince) parts.push(`without a secondary since ${ago(ft.unprotectedSince, now)}`);
  return parts.join(", ") + (ft.reason && ft.state !== "Protected" ? ` — ${ft.reason}` : "");
}

function Conditions({ conditions, now }) {
  return html`<section aria-labelledby="conditions-title">
    <h4 id="conditions-title">Conditions</h4>
    ${conditions.length === 0 ? html`<p class="empty">None yet.</p>` : html`<table class="conditions">
      <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Since</th></tr></thead>
      <tbody>${conditions.map((c) => html`<tr key=${c.type} data-condition=${c.type}>
        <td>${c.type}</td><td>${c.status}</td><td>${c.reason}</td><td>${c.message}</td><td title=${c.lastTransitionTime}>${ago(c.lastTransitionTime, now)}</td>
      </tr>`)}</tbody>
    </table>`}
  </section>`;
}

function Drift({ drift }) {
  return html`<section aria-labelledby="drift-title">
    <h4 id="drift-title">Drift</h4>
    ${!drift ? html`<p class="empty">The hosts report what the spec implies.</p>` : html`
      <p>${plural(drift.count, "difference")} since ${clockTime(drift.since)}: the patch from what the spec implies to what the hosts report.</p>
      <pre class="patch" data-role="drift">${drift.operations.map((op) => `${op.op} ${op.path}${op.value !== undefined ? ` ${op.value}` : ""}`).join("\n")}</pre>`}
  </section>`;
}

function Events({ events, now }) {
  return html`<section aria-labelledby="vm-events-title">
    <h4 id="vm-events-title">Recent events</h4>
    ${events.length === 0 ? html`<p class="empty">No events kept for this VM.</p>` : html`<ol class="events compact">
      ${events.map((e) => html`<li key=${e.i} class=${e.y === "W" ? "warning" : ""}>
        <time title=${clockTime(e.t)}>${ago(e.t, now)}</time> <strong>${e.r}</strong> ${e.m}
      </li>`)}
    </ol>`}
  </section>`;
}

/** The events fetched with the detail and those streamed since, newest first, each once. */
function mergeEvents(fetched, live) {
  const byId = new Map();
  for (const e of [...fetched, ...live]) byId.set(e.i, e);
  return [...byId.values()].sort((a, b) => b.i - a.i).slice(0, 50);
}
