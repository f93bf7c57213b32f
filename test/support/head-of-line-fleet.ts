// The fleet a new user tried admission control with: six hosts, one in maintenance, the default HA
// settings (admission control tolerating one host failure), five database VMs that must each run on a
// host of their own, sixteen web VMs with no rules, and one VM larger than any host. The fifth database
// can never be admitted (each host in service would hold one: no failure could be absorbed); nobody else
// may wait behind it, and the one that fits nowhere is Unschedulable.

import { clusterYaml, hostYaml, vmYaml } from "./scenario.ts";

export const HOL_NAMESPACE = "shop";
export const DATABASES = ["db-1", "db-2", "db-3", "db-4", "db-5"];
export const WEB = Array.from({ length: 16 }, (_, i) => `web-${String(i + 1).padStart(2, "0")}`);
export const HUGE = "huge";

const ANTI_AFFINITY = "  placement: {cluster: prod, vmAntiAffinity: {required: [{labelSelector: {matchLabels: {tier: db}}, topologyKey: vireo.dev/host}]}}\n";

export function headOfLineFleet(): string {
  const hosts = ["esx-01", "esx-02", "esx-03", "esx-04", "esx-05", "esx-06"].map((h) => hostYaml(h, { memoryMiB: 65536, maintenance: h === "esx-06" })).join("");
  const databases = DATABASES.map((n) => vmYaml(n, { namespace: HOL_NAMESPACE, memoryMiB: 8192, labels: { tier: "db" } }).replace("  placement: {cluster: prod}\n", ANTI_AFFINITY)).join("");
  const web = WEB.map((n) => vmYaml(n, { namespace: HOL_NAMESPACE, memoryMiB: 4096, labels: { tier: "web" } })).join("");
  return clusterYaml("prod") + hosts + databases + web + vmYaml(HUGE, { namespace: HOL_NAMESPACE, memoryMiB: 200_000 });
}
