// The VM filter box: words separated by spaces, all of which must match.
//   ns:shop  phase:Running  cluster:prod  host:esx-01  lab:shop-stack  owner:alice   exact, any case
//   label:tier=db  label:tier                                                         a label's value, or the label at all
//   web                                                                               part of "namespace/name"
// The same field given twice matches either value (phase:Failed phase:Pending).

import { CLUSTER, HOST, LAB, LABELS, NAME, NS, OWNER, PHASE } from "./model.js";

const FIELDS = { ns: NS, namespace: NS, phase: PHASE, host: HOST, cluster: CLUSTER, lab: LAB, owner: OWNER };

export const FILTER_HELP = "ns: phase: cluster: host: lab: owner: label:key=value, or part of a name";

export function parseFilter(text) {
  const fields = new Map();
  const labels = [];
  const words = [];
  const unknown = [];
  for (const token of text.trim().split(/\s+/).filter(Boolean)) {
    const colon = token.indexOf(":");
    const field = colon > 0 ? token.slice(0, colon).toLowerCase() : undefined;
    const value = colon > 0 ? token.slice(colon + 1) : token;
    if (field === "label") {
      const eq = value.indexOf("=");
      labels.push(eq >= 0 ? [value.slice(0, eq), value.slice(eq + 1)] : [value, undefined]);
    } else if (field !== undefined && field in FIELDS) {
      const column = FIELDS[field];
      const values = fields.get(column) ?? [];
      values.push(value.toLowerCase());
      fields.set(column, values);
    } else if (field !== undefined) unknown.push(field);
    else words.push(token.toLowerCase());
  }
  return { fields, labels, words, unknown, empty: fields.size + labels.length + words.length === 0 };
}

export function matches(filter, row, labelSets) {
  for (const [column, values] of filter.fields) {
    if (!values.includes(String(row[column]).toLowerCase())) return false;
  }
  if (filter.labels.length) {
    const labels = labelSets[row[LABELS]] ?? {};
    for (const [key, value] of filter.labels) {
      if (!(key in labels) || (value !== undefined && labels[key] !== value)) return false;
    }
  }
  if (filter.words.length) {
    const name = `${row[NS]}/${row[NAME]}`.toLowerCase();
    for (const word of filter.words) if (!name.includes(word)) return false;
  }
  return true;
}
