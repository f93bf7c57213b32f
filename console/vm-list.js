// The VM list: a filter box and a windowed list — only the rows in view (and a few either side) are in the
// page, so 20,000 VMs scroll as smoothly as twenty. A listbox: arrow keys, Page Up/Down, Home and End move
// the selection, which opens the VM in the detail pane.

import { useEffect, useRef, useState } from "./vendor/hooks.mjs";
import { CLUSTER, FLAG, FLAGS, HOST, LAB, NAME, NS, OWNER, PHASE, vmKey } from "./model.js";
import { FILTER_HELP } from "./filter.js";
import { html, tone } from "./format.js";

/** Pixels per row: fixed, so the rows in view follow from the scroll position alone. */
export const ROW_HEIGHT = 30;
const OVERSCAN = 8;

const MARKS = [
  [FLAG.notReady, "not ready"],
  [FLAG.drifted, "drift"],
  [FLAG.migrating, "migrating"],
  [FLAG.failingOver, "failing over"],
  [FLAG.rpoViolated, "RPO"],
];

export function VmFilter({ value, onInput, shown, total, inputRef, unknown }) {
  return html`<div class="filter">
    <label for="vm-filter">Filter VMs</label>
    <input id="vm-filter" ref=${inputRef} type="search" autocomplete="off" spellcheck="false"
      placeholder="phase:Running cluster:prod label:tier=db owner:alice"
      aria-describedby="vm-filter-help" value=${value} onInput=${(e) => onInput(e.currentTarget.value)} />
    <span id="vm-filter-help" class="hint">${FILTER_HELP}${unknown.length ? ` — unknown: ${unknown.join(", ")}` : ""}</span>
    <span class="count" role="status" data-role="vm-count">${shown === total ? `${total} VMs` : `${shown} of ${total} VMs`}</span>
  </div>`;
}

export function VmList({ model, keys, selected, onSelect }) {
  const box = useRef(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(ROW_HEIGHT * 16);
  useEffect(() => {
    const element = box.current;
    const observer = new ResizeObserver(() => setHeight(element.clientHeight));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const at = selected ? keys.indexOf(selected) : -1;
  // The selection, moved by the keyboard or from elsewhere (a tile, an event), is scrolled into view.
  useEffect(() => {
    const element = box.current;
    if (at < 0 || !element) return;
    const top = at * ROW_HEIGHT;
    if (top < element.scrollTop) element.scrollTop = top;
    else if (top + ROW_HEIGHT > element.scrollTop + element.clientHeight) element.scrollTop = top + ROW_HEIGHT - element.clientHeight;
  }, [selected, at]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(keys.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  const rows = [];
  for (let i = first; i < last; i++) rows.push(html`<${VmRow} key=${keys[i]} index=${i} row=${model.vms.get(keys[i])} selected=${keys[i] === selected} onSelect=${onSelect} />`);

  const onKeyDown = (event) => {
    const page = Math.max(1, Math.floor(height / ROW_HEIGHT) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -Infinity, End: Infinity };
    const move = moves[event.key];
    if (move === undefined || keys.length === 0) return;
    event.preventDefault();
    const next = Math.min(keys.length - 1, Math.max(0, at < 0 ? 0 : at + move));
    onSelect(keys[next]);
  };

  return html`<div class="vm-list" ref=${box} tabindex="0" role="listbox" aria-label="Virtual machines"
      aria-activedescendant=${at >= 0 ? rowId(selected) : undefined}
      onScroll=${(e) => setScrollTop(e.currentTarget.scrollTop)} onKeyDown=${onKeyDown}>
    <div class="vm-list-space" style=${{ height: `${keys.length * ROW_HEIGHT}px` }}>${rows}</div>
    ${keys.length === 0 ? html`<p class="empty">No VM matches.</p>` : null}
  </div>`;
}

function rowId(key) {
  return `vm-row-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

function VmRow({ row, index, selected, onSelect }) {
  if (!row) return null;
  const key = vmKey(row);
  const marks = MARKS.filter(([bit]) => row[FLAGS] & bit).map(([, text]) => text);
  return html`<div class=${`vm-row${selected ? " selected" : ""}`} id=${rowId(key)} role="option" aria-selected=${selected}
      data-vm=${key} data-phase=${row[PHASE]} data-host=${row[HOST]} style=${{ top: `${index * ROW_HEIGHT}px` }} onClick=${() => onSelect(key)}>
    <span class="vm-name" title=${key}><span class="ns">${row[NS]}/</span>${row[NAME]}</span>
    <span class=${`phase tone-${tone(row[PHASE])}`}>${row[PHASE]}</span>
    <span class="vm-host">${row[HOST] || "—"}</span>
    <span class="vm-cluster">${row[CLUSTER]}</span>
    <span class="vm-owner" data-role="owner">${row[OWNER]}</span>
    <span class="vm-lab">${row[LAB]}</span>
    <span class="vm-marks">${marks.map((m) => html`<span class="mark">${m}</span>`)}</span>
  </div>`;
}
