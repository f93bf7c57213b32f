#!/usr/bin/env node
// The `vireo` command.

import { UsageError } from "./args.ts";
import { VERSION } from "./version.ts";

const HELP = `vireo — a declarative controller for virtual machines

Usage:
  vireo run --manifests DIR [--state-dir DIR] [--time-scale N] [--metrics-addr HOST:PORT] [--no-prune]
            [--provider URL --provider-token-file FILE]
  vireo run [--kubeconfig PATH] [--leader-elect] [--leader-election-namespace NS] [--metrics-addr HOST:PORT]
  vireo get vms|hosts|hostclusters|vmim|rp|labs|replications|errors [NAME] [-n NAMESPACE] [-o wide|json|yaml] [--state-dir DIR | --kubeconfig PATH]
  vireo report usage [--expiring-within 24h] [--idle-cpu-percent 5] [--idle-for 24h] [--reclaim --dry-run] [-n NAMESPACE] [-o json|yaml]
            [--state-dir DIR | --kubeconfig PATH]     (vireo report --help says how idle is judged)
  vireo hostsim --state FILE --token-file FILE [--listen HOST:PORT] [--seed N] [--time-scale N] [--insecure-no-auth]
  vireo plan (--manifests DIR [--state-dir DIR] | [--kubeconfig PATH]) [--provider URL --provider-token-file FILE] [-o table|json]
  vireo sim power-off|power-on|move|set-memory|set-networks|create NAMESPACE/NAME … (--state-dir DIR | --provider URL --provider-token-file FILE)
  vireo migrate NAMESPACE/VM [--to HOST] [--cold | --to-hypervisor esx|hyperv|kvm|xen [--new-macs]] [--no-wait] [--timeout SECONDS]
            (--state-dir DIR | --kubeconfig PATH)
  vireo balance approve CLUSTER RECOMMENDATION-ID [--no-wait] (--state-dir DIR | --kubeconfig PATH)
  vireo simulate SCENARIO.yaml [--seed N] [--report report.html] [--timeline run.json] [-o text|json]
            (a what-if run on a virtual clock: faults, maintenance, load; vireo simulate --help)
  vireo version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    // With --manifests, the file mode; otherwise the API mode (--kubeconfig, KUBECONFIG or in-cluster).
    // The API client is loaded only in API mode: it is most of the process's memory.
    // Each command loads only what it uses: a controller in API mode carries no file-mode code, and back.
    case "run": return rest.some((a) => a === "--manifests" || a.startsWith("--manifests=")) ? (await import("./run.ts")).run(rest) : (await import("./run-kube.ts")).runKube(rest);
    case "hostsim": return (await import("./hostsim.ts")).hostsim(rest);
    case "sim": return (await import("./sim.ts")).sim(rest, (line) => console.log(line));
    case "plan": return (await import("./plan.ts")).plan(rest, (text) => console.log(text));
    case "migrate": return (await import("./migrate.ts")).migrate(rest, (line) => console.log(line));
    case "balance": return (await import("./migrate.ts")).balance(rest, (line) => console.log(line));
    case "simulate": return await (await import("./simulate.ts")).simulate(rest, { out: (t) => console.log(t), err: (t) => console.error(t) });
    case "get": return await (await import("./get.ts")).get(rest, { out: (t) => console.log(t), err: (t) => console.error(t) }, Date.now());
    case "report": return await (await import("./report.ts")).report(rest, { out: (t) => console.log(t), err: (t) => console.error(t) }, Date.now());
    case "version":
    case "--version": console.log(`vireo ${VERSION}`); return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h": console.log(HELP); return command === undefined ? 1 : 0;
    default: throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}\n\n${HELP}`);
      process.exitCode = 2;
    } else {
      // One line for a person; the whole error, causes and stack, at debug level.
      console.error(process.env["VIREO_LOG_LEVEL"] === "debug" ? error : `error: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  },
);
