// The run as JSON that reads well and diffs well: nested objects indented, and an array or object whose
// values are all plain (numbers, strings, null) on one line — a timeline record per line, a series per
// line. Keys keep the order they were built in, so the same run gives the same bytes.

export function runJson(value: unknown): string {
  return `${write(value, "")}\n`;
}

function isPlain(value: unknown): boolean {
  return value === null || typeof value !== "object";
}

function write(value: unknown, indent: string): string {
  if (isPlain(value)) return JSON.stringify(value) ?? "null";
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every(isPlain)) return JSON.stringify(value);
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => inner + write(v, inner)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.every(([, v]) => isPlain(v))) return JSON.stringify(Object.fromEntries(entries));
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${write(v, inner)}`).join(",\n")}\n${indent}}`;
}
