// What the simulated hosts' observations cost in a benchmark run: the controller observes them every
// second, and building an observation is synchronous, so timing each call times all of it.

import { performance } from "node:perf_hooks";
import type { SimulatedHosts } from "../controller/provider/sim/index.ts";

/** Counts the time spent in `sim.observe` from now on; `reset` starts the count again. */
export function timeObservations(sim: SimulatedHosts): { ms(): number; reset(): void } {
  let total = 0;
  const observe = sim.observe.bind(sim);
  sim.observe = () => {
    const start = performance.now();
    const observation = observe();
    total += performance.now() - start;
    return observation;
  };
  return { ms: () => total, reset: () => { total = 0; } };
}
