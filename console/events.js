// The latest events, newest first, filtered by object (any part of "Kind/namespace/name").

import { ago, clockTime, html } from "./format.js";

/** Events drawn at once; the filter finds older ones among those the page keeps. */
const SHOWN = 200;

export function EventList({ events, filter, onFilter, now, onVm }) {
  const needle = filter.trim().toLowerCase();
  const matching = [];
  for (let i = events.length - 1; i >= 0 && matching.length < SHOWN; i--) {
    if (!needle || events[i].o.toLowerCase().includes(needle)) matching.push(events[i]);
  }
  return html`<section class="events-panel" aria-labelledby="events-title">
    <h2 id="events-title">Events</h2>
    <div class="filter">
      <label for="event-filter">Filter by object</label>
      <input id="event-filter" type="search" autocomplete="off" spellcheck="false" placeholder="VirtualMachine/shop/db-1, esx-03, Fault"
        value=${filter} onInput=${(e) => onFilter(e.currentTarget.value)} />
      <span class="count">${matching.length === SHOWN ? `latest ${SHOWN}` : `${matching.length} events`}</span>
    </div>
    <ol class="events" data-role="events">
      ${matching.map((e) => html`<li key=${e.i} class=${e.y === "W" ? "warning" : ""} data-object=${e.o} data-reason=${e.r}>
        <time title=${clockTime(e.t)}>${ago(e.t, now)}</time>
        <span class="event-type">${e.y === "W" ? "Warning" : "Normal"}</span>
        <strong class="event-reason">${e.r}</strong>
        ${e.o.startsWith("VirtualMachine/") ? html`<button class="event-object link" onClick=${() => onVm(e.o.slice("VirtualMachine/".length))}>${e.o}</button>` : html`<span class="event-object">${e.o}</span>`}
        <span class="event-message">${e.m}</span>
      </li>`)}
    </ol>
    ${matching.length === 0 ? html`<p class="empty">No events${needle ? " about this object" : " yet"}.</p>` : null}
  </section>`;
}
