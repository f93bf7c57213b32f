// The flags that point a controller at a `vireo hostsim` instead of the in-process simulated hosts,
// shared by the file mode and the API mode.

import { connectHostsim, type HostsimConnection } from "../provider/http/connect.ts";
import type { Logger } from "../observe/log.ts";
import { UsageError, type FlagSpec } from "./args.ts";

export const PROVIDER_FLAGS: FlagSpec = {
  provider: { type: "string", help: "URL of a vireo hostsim to reconcile against, instead of simulating the hosts in-process" },
  "provider-token-file": { type: "string", help: "file holding the hostsim's bearer token" },
};

/** With --provider: the remote simulated hosts and their clock; undefined for the in-process simulator. */
export async function connectRemoteProvider(
  argv: readonly string[],
  flags: Record<string, string | boolean | undefined>,
  timeScale: number,
  log: Logger,
): Promise<HostsimConnection | undefined> {
  const url = flags["provider"] as string | undefined;
  const tokenFile = flags["provider-token-file"] as string | undefined;
  if (!url) {
    if (tokenFile) throw new UsageError("--provider-token-file needs --provider URL");
    return undefined;
  }
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new UsageError(`--provider ${url}: not an http:// or https:// URL`);
  const timeScaleGiven = argv.some((a) => a === "--time-scale" || a.startsWith("--time-scale="));
  return connectHostsim({ url, log, ...(tokenFile ? { tokenFile } : {}), ...(timeScaleGiven ? { requestedTimeScale: timeScale } : {}) });
}

