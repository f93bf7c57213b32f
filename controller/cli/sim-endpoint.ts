// How `vireo sim` reaches the simulated hosts inside a running file-mode `vireo run`: that process serves
// the hostsim API (the same routes, server and token check as `vireo hostsim`) on a free loopback port,
// and writes the address and a fresh random token into its state directory, readable by its user only.
// `vireo sim --state-dir S` reads them. Nothing listens beyond loopback; the file goes when the run stops.

import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../state/atomic-write.ts";
import { HostsimServer } from "../provider/http/server.ts";
import type { SimulatedHosts } from "../provider/sim/index.ts";
import type { Logger } from "../observe/log.ts";

export const SIM_ENDPOINT_FILE = "sim-endpoint.json";

export interface SimEndpoint {
  url: string;
  token: string;
}

/** Serves `sim` on 127.0.0.1 behind a new token and notes where in the state directory. Returns its stop. */
export async function serveSimEndpoint(sim: SimulatedHosts, stateDir: string, timeScale: number, log: Logger): Promise<() => Promise<void>> {
  const token = randomBytes(32).toString("hex");
  const server = new HostsimServer({ sim, timeScale, token, log });
  const address = await server.listen("127.0.0.1:0");
  const path = join(stateDir, SIM_ENDPOINT_FILE);
  // writeFileAtomic creates the file 0600: the token is for this user only.
  await writeFileAtomic(path, JSON.stringify({ url: `http://${address}`, token } satisfies SimEndpoint));
  return async () => {
    rmSync(path, { force: true });
    await server.close();
  };
}

/** The endpoint a running `vireo run` noted in `stateDir`; an error that says so when none runs. */
export function readSimEndpoint(stateDir: string): SimEndpoint {
  const path = join(stateDir, SIM_ENDPOINT_FILE);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`no running vireo run with in-process simulated hosts uses state directory ${stateDir} (${path}: ${(error as Error).message})`, { cause: error });
  }
  const endpoint = JSON.parse(text) as Partial<SimEndpoint>;
  if (typeof endpoint.url !== "string" || typeof endpoint.token !== "string") throw new Error(`${path} lacks url or token`);
  return { url: endpoint.url, token: endpoint.token };
}
