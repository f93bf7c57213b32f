// How a controller process attaches to a `vireo hostsim`: the HTTP provider, and a clock on the
// simulator's timeline that every exchange keeps in step.

import { readFileSync } from "node:fs";
import type { Logger } from "../../observe/log.ts";
import { HostsimAuthError, HttpProvider } from "./client.ts";
import { connectProviderClock } from "./synced-clock.ts";
import type { ProviderClock } from "./synced-clock.ts";

export interface HostsimConnection {
  provider: HttpProvider;
  clock: ProviderClock;
}

export interface ConnectHostsimOptions {
  url: string;
  /** File holding the bearer token; without one, requests carry none (a hostsim run with --insecure-no-auth). */
  tokenFile?: string;
  /** The time scale the user asked for, if any: the provider's wins, and a difference is logged. */
  requestedTimeScale?: number;
  log: Logger;
  /** How long to wait for a hostsim that is not up yet; default 60 s. */
  patienceMs?: number;
}

/** The token in `path`, trimmed; a missing or empty file is an error naming it. */
export function readTokenFile(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new Error(`cannot read the provider token file ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (token.length === 0) throw new Error(`the provider token file ${path} is empty`);
  return token;
}

export async function connectHostsim(options: ConnectHostsimOptions): Promise<HostsimConnection> {
  const { log } = options;
  const token = options.tokenFile === undefined ? undefined : readTokenFile(options.tokenFile);
  if (token === undefined) log.warn(`no --provider-token-file: requests to ${options.url} carry no token`);
  const provider = new HttpProvider({ url: options.url, ...(token === undefined ? {} : { token }) });
  const clock = await connectProviderClock(provider, {
    ...(options.patienceMs === undefined ? {} : { patienceMs: options.patienceMs }),
    isFatal: (error) => error instanceof HostsimAuthError,
    onRetry: (error, attempt) => log.warn({ err: error, attempt }, `hostsim at ${provider.url} not reachable yet; retrying`),
  });
  const requested = options.requestedTimeScale;
  if (requested !== undefined && requested !== clock.timeScale) {
    log.warn(`--time-scale ${requested} ignored: the controller keeps hostsim's time, which runs ${clock.timeScale}x`);
  }
  log.info(`simulated hosts at ${provider.url}; their time runs ${clock.timeScale}x`);
  return { provider, clock };
}
