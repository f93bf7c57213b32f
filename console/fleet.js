// The fleet: each cluster with its hosts as tiles — phase by colour (and in words), CPU and memory
// allocated and used as bars, the VMs on the host, maintenance and storage — under the cluster's failover
// capacity, imbalance and VMs waiting. A large cluster starts collapsed, showing only its hosts that are
// not ready; an open one draws a page of tiles at a time; a tile is drawn again only when its host or its
// VMs changed.

import { Component } from "./vendor/preact.mjs";
import { useState } from "./vendor/hooks.mjs";
import { FLAG, FLAGS, NAME, PHASE, vmKey } from "./model.js";
import { gib, html, percent, plural, tone } from "./format.js";

/** Tiles an open cluster draws before "show more". */
const TILE_PAGE = 120;
/** VM names a tile lists before "+N more". */
const TILE_VMS = 8;
/** A cluster with more hosts than this starts collapsed. */
const OPEN_UP_TO = 64;

export function Fleet({ model, onHost, onVm, selected }) {
  const groups = new Map();
  for (const host of model.hosts.values()) {
    const cluster = host.c ?? "";
    const list = groups.get(cluster);
    if (list) list.push(host);
    else groups.set(cluster, [host]);
  }
  const names = [...new Set([...model.clusters.keys(), ...groups.keys()])].sort((a, b) => (a === "" ? 1 : b === "" ? -1 : a.localeCompare(b)));
  return html`<section class="fleet" aria-labelledby="fleet-title">
    <h2 id="fleet-title">Fleet</h2>
    ${names.length === 0 ? html`<p class="empty">No hosts yet.</p>` : null}
    ${names.map((name) => html`<${ClusterSection}
      key=${name || "(none)"}
      name=${name}
      cluster=${model.clusters.get(name)}
      hosts=${(groups.get(name) ?? []).sort((a, b) => a.n.localeCompare(b.n))}
      model=${model}
      onHost=${onHost}
      onVm=${onVm}
      selected=${selected} />`)}
  </section>`;
}

function ClusterSection({ name, cluster, hosts, model, onHost, onVm, selected }) {
  const [open, setOpen] = useState(hosts.length <= OPEN_UP_TO);
  const [shown, setShown] = useState(TILE_PAGE);
  const id = `cluster-${name || "none"}`;
  return html`<section class="cluster" data-cluster=${name} aria-labelledby=${id}>
    <header class="cluster-head">
      <h3 id=${id}>
        <button class="disclosure" aria-expanded=${open} aria-controls=${`${id}-hosts`} onClick=${() => setOpen(!open)}>
          <span aria-hidden="true">${open ? "▾ " : "▸ "}</span>${name ? `Cluster ${name}` : "Hosts in no cluster"}
        </button>
      </h3>
      ${cluster ? html`<${ClusterFacts} cluster=${cluster} />` : html`<span class="facts">${plural(hosts.length, "host")}</span>`}
    </header>
    ${open ? html`<div class="tiles" id=${`${id}-hosts`}>
      ${hosts.slice(0, shown).map((host) => tile(host))}
      ${hosts.length > shown ? html`<button class="more" onClick=${() => setShown(shown + TILE_PAGE)}>Show ${Math.min(TILE_PAGE, hosts.length - shown)} more of ${hosts.length} hosts</button>` : null}
    </div>` : html`<${Troubled} hosts=${hosts} tile=${tile} />`}
  </section>`;

  function tile(host) {
    return html`<${HostTile} key=${host.n} host=${host} vms=${model.byHost.get(host.n)} onHost=${onHost} onVm=${onVm} selected=${selected} />`;
  }
}

/** A collapsed cluster still shows the hosts that are not Ready (or in maintenance): a drill stays visible. */
function Troubled({ hosts, tile }) {
  const troubled = hosts.filter((h) => h.p !== "Ready" && h.p !== "Maintenance");
  if (troubled.length === 0) return null;
  return html`<div class="tiles troubled" aria-label="hosts not ready">
    ${troubled.slice(0, TILE_PAGE).map(tile)}
    ${troubled.length > TILE_PAGE ? html`<p class="more">and ${troubled.length - TILE_PAGE} more hosts not ready</p>` : null}
  </div>`;
}

function ClusterFacts({ cluster: c }) {
  const short = c.fr !== undefined && c.ft !== undefined && c.ft < c.fr;
  return html`<ul class="facts" aria-label="cluster status">
    <li>${c.hr}/${c.ht} hosts ready</li>
    <li>${c.vr}/${c.vt} VMs running</li>
    ${c.ha ? html`<li class=${short ? "warn" : ""} data-fact="failover">
      ${c.ft === undefined ? "failover capacity not computed yet" : `tolerates ${plural(c.ft, "host failure")}`}${c.fr !== undefined ? ` (needs ${c.fr})` : ""}
    </li>` : html`<li>HA off</li>`}
    ${c.im !== undefined ? html`<li class=${c.im > c.it ? "warn" : ""}>imbalance ${c.im}${c.it !== undefined ? ` (target ${c.it})` : ""}</li>` : null}
    <li class=${c.aw > 0 ? "warn" : ""} data-fact="waiting">${plural(c.aw, "VM")} waiting for capacity</li>
    ${c.un > 0 ? html`<li class="warn">${plural(c.un, "VM")} unschedulable</li>` : null}
    ${c.rd && c.rd !== "True" && c.rm ? html`<li class="warn">${c.rm}</li>` : null}
  </ul>`;
}

/** A host tile, drawn again only when its view, its VMs or the selection among them changed. */
class HostTile extends Component {
  shouldComponentUpdate(next) {
    const p = this.props;
    if (next.host !== p.host || next.vms !== p.vms) return true;
    const had = p.vms?.some((row) => vmKey(row) === p.selected);
    const has = next.vms?.some((row) => vmKey(row) === next.selected);
    return had !== has || (has && next.selected !== p.selected);
  }

  render({ host, vms = [], onHost, onVm, selected }) {
    return html`<article class=${`tile tone-${tone(host.p)}`} data-host=${host.n} data-phase=${host.p} aria-label=${`host ${host.n}, ${host.p}`}>
      <header>
        <button class="host-name" title="List this host's VMs" onClick=${() => onHost(host.n)}>${host.n}</button>
        <span class=${`phase tone-${tone(host.p)}`} data-role="phase">${host.p}</span>
      </header>
      <${Badges} host=${host} />
      <${Bar} label="CPU" allocated=${percent(host.al[0], host.cap[0])} used=${percent(host.us[0], host.cores)}
        detail=${`${host.al[0]}/${host.cap[0]} vCPU allocated, ${host.us[0]}/${host.cores} cores used`} />
      <${Bar} label="Mem" allocated=${percent(host.al[1], host.cap[1])} used=${percent(host.us[1], host.cap[1])}
        detail=${`${gib(host.al[1])} allocated, ${gib(host.us[1])} used of ${gib(host.cap[1])}`} />
      <ul class="tile-vms" aria-label=${`${plural(vms.length, "VM")} on ${host.n}`}>
        ${vms.slice(0, TILE_VMS).map((row) => html`<li key=${vmKey(row)}>
          <button class=${`vm-chip tone-${tone(row[PHASE])}${vmKey(row) === selected ? " selected" : ""}`} data-vm=${vmKey(row)} title=${`${vmKey(row)}: ${row[PHASE]}`} onClick=${() => onVm(vmKey(row))}>
            ${row[NAME]}${row[FLAGS] & FLAG.migrating ? " ⇢" : ""}
          </button>
        </li>`)}
        ${vms.length > TILE_VMS ? html`<li><button class="vm-chip more-vms" onClick=${() => onHost(host.n)}>+${vms.length - TILE_VMS} more</button></li>` : null}
      </ul>
    </article>`;
  }
}

function Badges({ host }) {
  const troubled = host.ds.filter(([, state]) => state !== "Ok");
  const pathsDown = host.sp[0] < host.sp[1];
  return html`<ul class="badges">
    ${host.m ? html`<li class="badge busy" data-badge="maintenance">maintenance${host.p === "Maintenance" ? "" : " requested"}</li>` : null}
    ${host.eb ? html`<li class="badge warn">${plural(host.eb, "VM")} cannot leave</li>` : null}
    ${troubled.map(([name, state, up]) => html`<li class=${`badge ${state === "AllPathsDown" ? "bad" : "warn"}`} data-badge="storage">${name}: ${state} (${plural(up, "path")} up)</li>`)}
    ${troubled.length === 0 ? html`<li class=${`badge ${pathsDown ? "warn" : "quiet"}`} data-badge="storage">storage ${host.sp[0]}/${host.sp[1]} paths · ${plural(host.ds.length, "datastore")}</li>` : null}
    ${host.dr ? html`<li class="badge warn">drift: ${plural(host.dr, "change")}</li>` : null}
  </ul>`;
}

function Bar({ label, allocated, used, detail }) {
  const a = Math.round(allocated);
  const u = Math.round(used);
  return html`<div class="bar-row" title=${detail}>
    <span class="bar-label">${label}</span>
    <div class="bar" role="img" aria-label=${`${label}: ${a}% allocated, ${u}% used (${detail})`}>
      <span class="bar-allocated" style=${{ width: `${allocated}%` }}></span>
      <span class="bar-used" style=${{ width: `${used}%` }}></span>
    </div>
    <span class="bar-text">${a}% · ${u}%</span>
  </div>`;
}
