// `vireo sim`: make the changes an administrator could make on the hosts behind Vireo's back, to see Vireo
// notice them as drift and heal them. Works against a `vireo hostsim` (--provider) or against the
// in-process simulated hosts of a running file-mode `vireo run` (--state-dir; see sim-endpoint.ts).

import { HttpProvider } from "../provider/http/client.ts";
import { readTokenFile } from "../provider/http/connect.ts";
import type { OutOfBandChanges } from "../provider/provider.ts";
import { parseArgs, UsageError, type FlagSpec } from "./args.ts";
import { readSimEndpoint } from "./sim-endpoint.ts";

export const SIM_USAGE = `vireo sim power-off|power-on NAMESPACE/NAME
vireo sim move NAMESPACE/NAME HOST
vireo sim set-memory NAMESPACE/NAME MIB
vireo sim set-networks NAMESPACE/NAME NETWORK[,NETWORK...]
vireo sim create NAMESPACE/NAME --host HOST --cpu N --memory MIB [--networks NETWORK[,NETWORK...]]
  with --state-dir DIR (a running vireo run --manifests) or --provider URL --provider-token-file FILE (a vireo hostsim)`;

const SIM_FLAGS: FlagSpec = {
  "state-dir": { type: "string", help: "state directory of a running file-mode vireo run" },
  provider: { type: "string", help: "URL of a vireo hostsim" },
  "provider-token-file": { type: "string", help: "file holding the hostsim's bearer token" },
  host: { type: "string", help: "create: the host to start the VM on" },
  cpu: { type: "string", default: "1", help: "create: vCPUs" },
  memory: { type: "string", default: "1024", help: "create: memory in MiB" },
  networks: { type: "string", help: "create: networks, comma-separated" },
};

export async function sim(argv: readonly string[], out: (line: string) => void): Promise<number> {
  const { flags, positionals } = parseArgs(argv, SIM_FLAGS);
  const [op, id, arg] = positionals;
  if (!op || !id) throw new UsageError(`vireo sim needs an operation and a VM:\n${SIM_USAGE}`);
  if (!/^[^/]+\/[^/]+$/.test(id)) throw new UsageError(`VM must be NAMESPACE/NAME, got ${id}`);
  const hosts = target(flags);
  const list = (text: string) => text.split(",").map((s) => s.trim()).filter(Boolean);
  const positive = (text: string | undefined, what: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what} must be a positive integer, got ${String(text)}`);
    return n;
  };
  switch (op) {
    case "power-off": await hosts.adminPowerOff(id); break;
    case "power-on": await hosts.adminPowerOn(id); break;
    case "move":
      if (!arg) throw new UsageError("vireo sim move needs the target HOST");
      await hosts.adminMove(id, arg);
      break;
    case "set-memory": await hosts.adminSetMemory(id, positive(arg, "MIB")); break;
    case "set-networks":
      if (arg === undefined) throw new UsageError("vireo sim set-networks needs the networks, comma-separated");
      await hosts.adminSetNetworks(id, list(arg));
      break;
    case "create": {
      const host = flags["host"] as string | undefined;
      if (!host) throw new UsageError("vireo sim create needs --host HOST");
      const networks = flags["networks"] as string | undefined;
      await hosts.adminCreateVm(id, host, { cpu: positive(flags["cpu"] as string, "--cpu"), memoryMiB: positive(flags["memory"] as string, "--memory"), ...(networks ? { networks: list(networks) } : {}) });
      break;
    }
    default: throw new UsageError(`unknown vireo sim operation "${op}":\n${SIM_USAGE}`);
  }
  out(`${op} ${id}${arg ? ` ${arg}` : ""}: done behind Vireo's back`);
  return 0;
}

function target(flags: Record<string, string | boolean | undefined>): OutOfBandChanges {
  const url = flags["provider"] as string | undefined;
  const stateDir = flags["state-dir"] as string | undefined;
  if (url && stateDir) throw new UsageError("--provider and --state-dir exclude each other");
  if (url) {
    const tokenFile = flags["provider-token-file"] as string | undefined;
    return new HttpProvider({ url, ...(tokenFile ? { token: readTokenFile(tokenFile) } : {}) });
  }
  if (!stateDir) throw new UsageError("vireo sim needs --state-dir DIR (a running vireo run --manifests) or --provider URL");
  const endpoint = readSimEndpoint(stateDir);
  return new HttpProvider({ url: endpoint.url, token: endpoint.token });
}
