// The controller's work queue adds random jitter to retry delays (engine/ratelimit.ts), drawn from
// Math.random. A simulated run must replay exactly, so while it runs Math.random is a generator seeded by
// the run's seed (mulberry32), and the process's own is put back after.

export async function withSeededRandom<T>(seed: number, run: () => Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = mulberry32(seed);
  try {
    return await run();
  } finally {
    Math.random = original;
  }
}

/** A small, fast 32-bit generator with a good spread (Tommy Ettinger's mulberry32). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
