// Durations as a scenario writes them (`30m`, `1h30m`, `90s`, or a number of seconds) and as the summary
// prints them.

import { durationMs } from "../planners/labs/lease.ts";

/** Milliseconds, or undefined when `value` is not a duration. */
export function durationOf(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  return durationMs(value);
}

/** `1h30m`, `5m`, `42s`, `1.5s`: the two largest units. */
export function describeDuration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`;
  const s = Math.round(ms / 1000);
  const units: [number, string][] = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  const i = units.findIndex(([size]) => s >= size);
  const [size, unit] = units[i]!;
  const [nextSize, nextUnit] = units[i + 1] ?? [1, ""];
  const rest = Math.trunc((s % size) / nextSize);
  return `${Math.trunc(s / size)}${unit}${rest > 0 && nextUnit ? `${rest}${nextUnit}` : ""}`;
}
