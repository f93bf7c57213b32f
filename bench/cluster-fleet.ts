// The fleet of the cluster benchmark, written both ways: Vireo's Hosts and VirtualMachines, and the same
// capacities and requests as kube-scheduler's Nodes and Pods. A host of 64 cores at an overcommit of 4 and
// 512 GiB is a Node of 256 CPUs and 512 GiB; VM i asks for 1–4 vCPUs and 2, 4 or 8 GiB, and so does pod i.

export interface ClusterSize {
  hosts: number;
  vms: number;
}

export const NAMESPACE = "bench";
const CORES = 64;
const OVERCOMMIT = 4;
const MEMORY_MIB = 512 * 1024;
/** The kubelet's default --max-pods: a Node without it would take no pod. */
const MAX_PODS = 110;

function vmShape(i: number): { cpu: number; memoryMiB: number } {
  return { cpu: 1 + (i % 4), memoryMiB: [2048, 4096, 8192][i % 3]! };
}

/** `parts` YAML streams of the documents, dealt round-robin: one for each kubectl creating them. */
function dealt(docs: readonly string[], parts: number): string[] {
  return Array.from({ length: parts }, (_, p) => docs.filter((_, i) => i % parts === p).join("---\n"));
}

/** The HostCluster and its hosts. */
export function hostsYaml(size: Readonly<ClusterSize>): string {
  const docs = [`apiVersion: vireo.dev/v1alpha1\nkind: HostCluster\nmetadata: {name: bench}\nspec:\n  hostSelector: {matchLabels: {vireo.dev/cluster: bench}}\n  ha: {admissionControl: {policy: Disabled}}\n`];
  for (let i = 0; i < size.hosts; i++) {
    docs.push(`apiVersion: vireo.dev/v1alpha1\nkind: Host\nmetadata: {name: h-${i}, labels: {vireo.dev/cluster: bench, topology.vireo.dev/rack: r${i % 10}}}\nspec: {hypervisor: kvm, cpu: {cores: ${CORES}, vendor: intel, features: [avx2], overcommitRatio: ${OVERCOMMIT}}, memoryMiB: ${MEMORY_MIB}, datastores: [shared], networks: [prod]}\n`);
  }
  return docs.join("---\n");
}

/** The VMs in `parts` streams; in the benchmark's namespace, or with none (the file mode's default). */
export function vmsYaml(size: Readonly<ClusterSize>, parts: number, namespace: string | undefined = NAMESPACE): string[] {
  const docs: string[] = [];
  const ns = namespace === undefined ? "" : `, namespace: ${namespace}`;
  for (let i = 0; i < size.vms; i++) {
    const { cpu, memoryMiB } = vmShape(i);
    docs.push(`apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachine\nmetadata: {name: vm-${i}${ns}, labels: {app: a${i % 50}}}\nspec: {cpu: ${cpu}, memoryMiB: ${memoryMiB}, disks: [{name: root, sizeGiB: 20, datastore: shared}], networks: [{name: prod}], placement: {cluster: bench}}\n`);
  }
  return dealt(docs, parts);
}

/**
 * Nodes with no kubelet, their capacity given at creation as a kubelet registers it (the API server keeps a
 * new Node's status). The API server's admission puts the not-ready taint on each.
 */
export function nodesYaml(size: Readonly<ClusterSize>, parts: number): string[] {
  const docs: string[] = [];
  for (let i = 0; i < size.hosts; i++) {
    const resources = `{cpu: "${CORES * OVERCOMMIT}", memory: ${MEMORY_MIB}Mi, pods: "${MAX_PODS}"}`;
    docs.push(`apiVersion: v1\nkind: Node\nmetadata: {name: n-${i}, labels: {kubernetes.io/hostname: n-${i}, topology.kubernetes.io/zone: r${i % 10}}}\nstatus: {capacity: ${resources}, allocatable: ${resources}}\n`);
  }
  return dealt(docs, parts);
}

/** Pods with the VMs' requests, tolerating the taints of Nodes that no kubelet runs. */
export function podsYaml(size: Readonly<ClusterSize>, parts: number): string[] {
  const tolerations = ["not-ready", "unreachable"].flatMap((taint) => ["NoSchedule", "NoExecute"].map((effect) => `{key: node.kubernetes.io/${taint}, operator: Exists, effect: ${effect}}`));
  const docs: string[] = [];
  for (let i = 0; i < size.vms; i++) {
    const { cpu, memoryMiB } = vmShape(i);
    docs.push(`apiVersion: v1\nkind: Pod\nmetadata: {name: vm-${i}, namespace: ${NAMESPACE}, labels: {app: a${i % 50}}}\nspec:\n  automountServiceAccountToken: false\n  tolerations: [${tolerations.join(", ")}]\n  containers: [{name: guest, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: "${cpu}", memory: ${memoryMiB}Mi}}}]\n`);
  }
  return dealt(docs, parts);
}
