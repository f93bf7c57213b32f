// The Helm chart (helm/vireo) and the plain manifests (manifests/deploy), checked as a cluster admin would:
// lint, render, read back what they grant and how the pods run, then apply them to a real kube-apiserver —
// a server-side dry run of every rendering, and a real `helm install` / `helm upgrade` whose RBAC is probed
// with `kubectl auth can-i`.
//
// manifests/deploy is generated from the chart with default values; after changing the chart, regenerate it
// (and the CRD copies) with:
//
//   VIREO_REGENERATE_DEPLOY=1 node --test test/deploy/helm.test.ts

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dump, loadAll } from "js-yaml";
import { ControlPlane } from "../envtest/controlplane.ts";
import { ensureControlPlaneBinaries } from "../envtest/setup.ts";
import { REPO, WAIT_MS, tempDir } from "../support/process.ts";

const CHART = join(REPO, "helm", "vireo");
const ALL_OPTIONS = join(CHART, "ci", "all-options-values.yaml");
const DEPLOY = join(REPO, "manifests", "deploy");
const CRDS = join(REPO, "crds");
const NAMESPACE = "vireo-system";
const RELEASE = "vireo";
const REGENERATE = process.env["VIREO_REGENERATE_DEPLOY"] === "1";

// ---- the shapes read back from the YAML ---------------------------------------------------------------

interface Metadata { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface KubeObject { apiVersion: string; kind: string; metadata: Metadata; [field: string]: unknown }
interface PolicyRule { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs: string[]; nonResourceURLs?: string[] }
interface Subject { kind: string; name: string; namespace?: string }
interface Binding extends KubeObject { roleRef: { kind: string; name: string }; subjects: Subject[] }
interface Probe { httpGet?: { path: string; port: string | number } }
interface EnvVar { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }
interface Container {
  name: string;
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; privileged?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume { name: string; emptyDir?: object; persistentVolumeClaim?: { claimName: string }; secret?: { secretName: string; items?: { key: string; path: string }[] } }
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number; seccompProfile?: { type: string } };
  containers: Container[];
  volumes?: Volume[];
}
interface Deployment extends KubeObject {
  spec: { replicas: number; strategy?: { type: string }; selector: { matchLabels: Record<string, string> }; template: { metadata: Metadata; spec: PodSpec } };
}
interface Service extends KubeObject { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } }

// ---- running helm and kubectl -------------------------------------------------------------------------

interface Ran { code: number; stdout: string; stderr: string }

function run(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: REPO, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}${error.message}` : stderr });
    });
    child.stdin?.end(options.input ?? "");
  });
}

function ok(result: Ran, what: string): string {
  assert.equal(result.code, 0, `${what} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** helm from the envtest cache (built with the control plane), else from PATH; its state under a temp dir. */
class Helm {
  private readonly home = tempDir("helm-home");
  readonly bin: string;
  constructor(binDir: string) {
    this.bin = existsSync(join(binDir, "helm")) ? join(binDir, "helm") : "helm";
  }
  run(args: readonly string[], extraEnv: Record<string, string> = {}): Promise<Ran> {
    const env: NodeJS.ProcessEnv = { ...process.env, HELM_CACHE_HOME: join(this.home.path, "cache"), HELM_CONFIG_HOME: join(this.home.path, "config"), HELM_DATA_HOME: join(this.home.path, "data"), NO_PROXY: "127.0.0.1,localhost", ...extraEnv };
    for (const proxy of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]) delete env[proxy];
    return run(this.bin, args, { env });
  }
  remove(): void {
    this.home.remove();
  }
}

function parseAll(text: string): KubeObject[] {
  return (loadAll(text) as (KubeObject | null)[]).filter((o): o is KubeObject => o !== null && typeof o === "object");
}

async function template(helm: Helm, ...args: string[]): Promise<KubeObject[]> {
  return parseAll(ok(await helm.run(["template", RELEASE, CHART, "--namespace", NAMESPACE, ...args]), `helm template ${args.join(" ")}`));
}

async function kustomize(): Promise<KubeObject[]> {
  return parseAll(ok(await run("kubectl", ["kustomize", DEPLOY]), "kubectl kustomize manifests/deploy"));
}

// ---- reading the renderings ---------------------------------------------------------------------------

const key = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

function ofKind<T extends KubeObject>(objects: readonly KubeObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as T[];
}

function only<T extends KubeObject>(objects: readonly KubeObject[], kind: string, component?: string): T {
  const found = ofKind<T>(objects, kind).filter((o) => component === undefined || o.metadata.labels?.["app.kubernetes.io/component"] === component);
  assert.equal(found.length, 1, `expected one ${kind}${component ? ` of ${component}` : ""}, found ${found.map(key).join(", ") || "none"}`);
  return found[0]!;
}

/** The value after `--flag` (or in `--flag=value`) in a command line. */
function flag(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at >= 0) return args[at + 1];
  return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** The plural names of the vireo.dev kinds in the repo's crds/: the controller's RBAC must cover exactly these. */
function vireoPlurals(): string[] {
  const plurals: string[] = [];
  for (const file of readdirSync(CRDS).filter((f) => /\.ya?ml$/.test(f))) {
    for (const crd of parseAll(readFileSync(join(CRDS, file), "utf8"))) {
      const spec = crd["spec"] as { group: string; names: { plural: string } };
      if (crd.kind === "CustomResourceDefinition" && spec.group === "vireo.dev") plurals.push(spec.names.plural);
    }
  }
  assert.ok(plurals.length >= 3, "crds/ holds the vireo.dev CRDs");
  return plurals.sort();
}

function normalizeRules(rules: readonly PolicyRule[]): string[] {
  const sorted = (xs: string[] | undefined): string[] | undefined => xs && [...xs].sort();
  return rules
    .map((r) => JSON.stringify({ apiGroups: sorted(r.apiGroups), resources: sorted(r.resources), resourceNames: sorted(r.resourceNames), verbs: sorted(r.verbs), nonResourceURLs: sorted(r.nonResourceURLs) }))
    .sort();
}

function expectedClusterRules(): PolicyRule[] {
  const plurals = vireoPlurals();
  return [
    { apiGroups: ["vireo.dev"], resources: plurals, verbs: ["get", "list", "watch", "update", "patch"] },
    // A LabTopology makes and removes its VirtualMachines, and a lease deletes a VM or a lab; no other
    // kind is ever created or deleted by the controller.
    { apiGroups: ["vireo.dev"], resources: ["virtualmachines"], verbs: ["create", "delete"] },
    { apiGroups: ["vireo.dev"], resources: ["labtopologies"], verbs: ["delete"] },
    { apiGroups: ["vireo.dev"], resources: plurals.map((p) => `${p}/status`), verbs: ["get", "update", "patch"] },
    { apiGroups: ["vireo.dev"], resources: plurals.map((p) => `${p}/finalizers`), verbs: ["update"] },
    { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
    { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  ];
}

function selects(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

// ---- the checks shared by every rendering -------------------------------------------------------------

interface Expectations {
  namespace: string;
  controllerReplicas: number;
  /** The token Secret and key both pods mount. */
  tokenSecret: string;
  tokenKey: string;
}

function checkRbac(objects: readonly KubeObject[], want: Expectations): void {
  const controller = only<Deployment>(objects, "Deployment", "controller");
  const hostsim = only<Deployment>(objects, "Deployment", "hostsim");
  const account = controller.spec.template.spec.serviceAccountName;
  assert.ok(account, "the controller runs under its own ServiceAccount");
  assert.ok(ofKind(objects, "ServiceAccount").some((sa) => sa.metadata.name === account), `ServiceAccount ${account} is created`);
  const subject: Subject = { kind: "ServiceAccount", name: account, namespace: want.namespace };

  const clusterRole = only<KubeObject & { rules: PolicyRule[] }>(objects, "ClusterRole");
  assert.deepEqual(normalizeRules(clusterRole.rules), normalizeRules(expectedClusterRules()), "the ClusterRole grants exactly what the controller uses");
  for (const rule of clusterRole.rules) {
    for (const field of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!field?.includes("*"), "no wildcard");
    assert.ok(!rule.resources?.includes("secrets"), "no Secrets");
  }
  const clusterBinding = only<Binding>(objects, "ClusterRoleBinding");
  assert.deepEqual(clusterBinding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole.metadata.name });
  assert.deepEqual(clusterBinding.subjects, [subject]);

  // Leader election: the Lease named by --leader-election-id, in the release namespace, and no other.
  const lease = flag(controller.spec.template.spec.containers[0]!.args ?? [], "--leader-election-id");
  assert.ok(lease, "the controller names its Lease");
  const role = only<KubeObject & { rules: PolicyRule[] }>(objects, "Role");
  assert.equal(role.metadata.namespace, want.namespace);
  assert.deepEqual(normalizeRules(role.rules), normalizeRules([
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [lease], verbs: ["get", "update"] },
  ]));
  const roleBinding = only<Binding>(objects, "RoleBinding");
  assert.equal(roleBinding.metadata.namespace, want.namespace);
  assert.deepEqual(roleBinding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name });
  assert.deepEqual(roleBinding.subjects, [subject]);

  // The simulated hosts never call the API server: no token mounted, no binding.
  const hostsimPod = hostsim.spec.template.spec;
  assert.equal(hostsimPod.automountServiceAccountToken, false);
  assert.notEqual(hostsimPod.serviceAccountName, account);
  assert.equal(controller.spec.template.spec.automountServiceAccountToken, true);
}

function checkPods(objects: readonly KubeObject[]): void {
  const deployments = ofKind<Deployment>(objects, "Deployment");
  assert.equal(deployments.length, 2);
  for (const d of deployments) {
    const pod = d.spec.template.spec;
    const where = d.metadata.name;
    assert.deepEqual(
      { runAsNonRoot: pod.securityContext?.runAsNonRoot, runAsUser: pod.securityContext?.runAsUser, runAsGroup: pod.securityContext?.runAsGroup, fsGroup: pod.securityContext?.fsGroup, seccomp: pod.securityContext?.seccompProfile?.type },
      { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccomp: "RuntimeDefault" },
      `${where}: pod security context`,
    );
    assert.ok(selects(d.spec.selector.matchLabels, d.spec.template.metadata.labels), `${where}: the selector matches its pods`);
    const tmp = pod.volumes?.find((v) => v.emptyDir !== undefined && pod.containers.every((c) => c.volumeMounts?.some((m) => m.name === v.name && m.mountPath === "/tmp")));
    assert.ok(tmp, `${where}: an emptyDir at /tmp`);
    for (const c of pod.containers) {
      const at = `${where}/${c.name}`;
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${at}: read-only root filesystem`);
      assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${at}: no privilege escalation`);
      assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], `${at}: drops every capability`);
      assert.equal(c.securityContext?.capabilities?.add, undefined, `${at}: adds none`);
      assert.notEqual(c.securityContext?.privileged, true, `${at}: not privileged`);
      assert.equal(c.livenessProbe?.httpGet?.path, "/healthz", `${at}: liveness probe`);
      assert.equal(c.readinessProbe?.httpGet?.path, "/readyz", `${at}: readiness probe`);
      for (const probe of [c.livenessProbe, c.readinessProbe]) {
        assert.ok(c.ports?.some((p) => p.name === probe?.httpGet?.port || p.containerPort === probe?.httpGet?.port), `${at}: probes a declared port`);
      }
      for (const kind of ["requests", "limits"] as const) {
        assert.ok(c.resources?.[kind]?.["cpu"] && c.resources[kind]["memory"], `${at}: cpu and memory ${kind}`);
        assert.ok(c.resources[kind]["ephemeral-storage"], `${at}: ephemeral-storage ${kind}`);
      }
    }
  }
}

function checkController(objects: readonly KubeObject[], want: Expectations): void {
  const d = only<Deployment>(objects, "Deployment", "controller");
  assert.equal(d.spec.replicas, want.controllerReplicas);
  const c = d.spec.template.spec.containers[0]!;
  const args = c.args ?? [];
  assert.equal(args[0], "run");
  assert.ok(args.includes("--leader-elect"), "leader election on");
  assert.equal(flag(args, "--leader-election-namespace"), "$(POD_NAMESPACE)");
  assert.deepEqual(c.env?.find((e) => e.name === "POD_NAMESPACE")?.valueFrom, { fieldRef: { fieldPath: "metadata.namespace" } }, "POD_NAMESPACE from the downward API");
  assert.ok(!args.some((a) => a.startsWith("--manifests") || a.startsWith("--kubeconfig")), "in-cluster API mode");
  assert.equal(flag(args, "--provider-token-file"), "/etc/vireo/hostsim-token/token");

  // --provider points at the Service of the hostsim pods, on its port.
  const provider = new URL(flag(args, "--provider") ?? "");
  const hostsim = only<Deployment>(objects, "Deployment", "hostsim");
  const service = ofKind<Service>(objects, "Service").find((s) => s.metadata.name === provider.hostname);
  assert.ok(service, `a Service named ${provider.hostname}`);
  assert.ok(selects(service.spec.selector, hostsim.spec.template.metadata.labels), "which selects the hostsim pods");
  assert.equal(Number(provider.port), service.spec.ports[0]!.port);

  // Metrics on all interfaces, on the port the probes and the metrics Service use.
  const metricsPort = c.ports?.find((p) => p.name === "metrics")?.containerPort;
  assert.equal(flag(args, "--metrics-addr"), `0.0.0.0:${metricsPort}`);
  checkTokenMount(d, want);
}

function checkHostsim(objects: readonly KubeObject[], want: Expectations): void {
  const d = only<Deployment>(objects, "Deployment", "hostsim");
  assert.equal(d.spec.replicas, 1);
  assert.equal(d.spec.strategy?.type, "Recreate", "the RWO volume is released before a new pod starts");
  const c = d.spec.template.spec.containers[0]!;
  const args = c.args ?? [];
  assert.equal(args[0], "hostsim");
  assert.equal(flag(args, "--listen"), `0.0.0.0:${c.ports?.find((p) => p.name === "hostsim")?.containerPort}`);
  assert.equal(flag(args, "--state"), "/data/world.json");
  assert.equal(flag(args, "--token-file"), "/etc/vireo/hostsim-token/token");
  const data = c.volumeMounts?.find((m) => m.mountPath === "/data");
  const claim = d.spec.template.spec.volumes?.find((v) => v.name === data?.name)?.persistentVolumeClaim?.claimName;
  assert.ok(claim, "/data is a PersistentVolumeClaim");
  assert.ok(ofKind(objects, "PersistentVolumeClaim").some((pvc) => pvc.metadata.name === claim), `the claim ${claim} is created`);
  checkTokenMount(d, want);
}

function checkTokenMount(d: Deployment, want: Expectations): void {
  const mount = d.spec.template.spec.containers[0]!.volumeMounts?.find((m) => m.mountPath === "/etc/vireo/hostsim-token");
  assert.ok(mount, `${d.metadata.name}: the token is mounted`);
  assert.equal(mount.readOnly, true, `${d.metadata.name}: the token is mounted read-only`);
  const secret = d.spec.template.spec.volumes?.find((v) => v.name === mount.name)?.secret;
  assert.ok(secret, `${d.metadata.name}: the token volume is a Secret`);
  assert.equal(secret.secretName, want.tokenSecret);
  assert.deepEqual(secret.items, [{ key: want.tokenKey, path: "token" }]);
}

function checkServices(objects: readonly KubeObject[]): void {
  const deployments = ofKind<Deployment>(objects, "Deployment");
  for (const s of ofKind<Service>(objects, "Service")) {
    const targets = deployments.filter((d) => selects(s.spec.selector, d.spec.template.metadata.labels));
    assert.equal(targets.length, 1, `Service ${s.metadata.name} selects the pods of exactly one Deployment`);
    for (const port of s.spec.ports) {
      assert.ok(targets[0]!.spec.template.spec.containers.some((c) => c.ports?.some((p) => p.name === port.targetPort)), `Service ${s.metadata.name}: targetPort ${port.targetPort} is a named container port`);
    }
  }
}

function checkStandardLabels(objects: readonly KubeObject[]): void {
  for (const o of objects.filter((x) => x.kind !== "CustomResourceDefinition" && x.kind !== "Namespace")) {
    for (const label of ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "app.kubernetes.io/component"]) {
      assert.ok(o.metadata.labels?.[label], `${key(o)} has ${label}`);
    }
  }
}

function checkAll(objects: readonly KubeObject[], want: Expectations): void {
  checkRbac(objects, want);
  checkPods(objects);
  checkController(objects, want);
  checkHostsim(objects, want);
  checkServices(objects);
  checkStandardLabels(objects);
}

const DEFAULTS: Expectations = { namespace: NAMESPACE, controllerReplicas: 2, tokenSecret: "vireo-hostsim-token", tokenKey: "token" };

// ---- manifests/deploy, generated from the chart -------------------------------------------------------

const GENERATED_HEADER = `# Generated from helm/vireo with default values (release "vireo", namespace vireo-system), without the
# token Secret (see kustomization.yaml). Do not edit: change the chart, then regenerate with
#   VIREO_REGENERATE_DEPLOY=1 node --test test/deploy/helm.test.ts
`;

const DEPLOY_NAMESPACE: KubeObject = {
  apiVersion: "v1",
  kind: "Namespace",
  metadata: {
    name: NAMESPACE,
    labels: {
      "app.kubernetes.io/part-of": "vireo",
      // Every Vireo pod meets the restricted Pod Security Standard; enforce it.
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/warn": "restricted",
      "pod-security.kubernetes.io/audit": "restricted",
    },
  },
};

/** Plain manifests carry no Helm bookkeeping: no chart label, managed by kustomize. */
function withoutHelmLabels(o: KubeObject): KubeObject {
  const copy = structuredClone(o);
  const relabel = (labels: Record<string, string> | undefined): void => {
    if (!labels) return;
    delete labels["helm.sh/chart"];
    if (labels["app.kubernetes.io/managed-by"]) labels["app.kubernetes.io/managed-by"] = "kustomize";
  };
  relabel(copy.metadata.labels);
  relabel((copy as Partial<Deployment>).spec?.template?.metadata.labels);
  return copy;
}

/** The files of manifests/deploy (besides kustomization.yaml and crds/), from the chart's default rendering. */
function deployFiles(chartDefault: readonly KubeObject[]): Map<string, KubeObject[]> {
  const objects = chartDefault.filter((o) => o.kind !== "CustomResourceDefinition" && o.kind !== "Secret").map(withoutHelmLabels);
  const pick = (kinds: string[], component?: string): KubeObject[] =>
    kinds.flatMap((kind) => objects.filter((o) => o.kind === kind && (component === undefined || o.metadata.labels?.["app.kubernetes.io/component"] === component)));
  const files = new Map<string, KubeObject[]>([
    ["namespace.yaml", [DEPLOY_NAMESPACE]],
    ["rbac.yaml", pick(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"])],
    ["controller.yaml", pick(["Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy"], "controller")],
    ["hostsim.yaml", pick(["PersistentVolumeClaim", "Service", "Deployment", "NetworkPolicy"], "hostsim")],
  ]);
  const placed = [...files.values()].flat().length - 1;
  assert.equal(placed, objects.length, `every rendered object has a file: ${objects.map(key).join(", ")}`);
  return files;
}

/** The chart's and the kustomization's copies of crds/. First: the chart's RBAC is rendered from its copies. */
function writeCrdCopies(): void {
  for (const dir of [join(CHART, "crds"), join(DEPLOY, "crds")]) {
    for (const f of crdFiles(dir)) rmSync(join(dir, f));
    for (const f of crdFiles(CRDS)) copyFileSync(join(CRDS, f), join(dir, f));
  }
  writeFileSync(join(DEPLOY, "crds", "kustomization.yaml"), crdKustomization());
}

function writeDeployFiles(files: Map<string, KubeObject[]>): void {
  for (const [file, objects] of files) {
    writeFileSync(join(DEPLOY, file), GENERATED_HEADER + objects.map((o) => `---\n${dump(o, { lineWidth: -1, noRefs: true })}`).join(""));
  }
}

/** The YAML files of a CRD directory (not a kustomization.yaml). */
function crdFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml").sort();
}

/** manifests/deploy/crds/kustomization.yaml: kustomize takes only the resources it is told. */
function crdKustomization(): string {
  const lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "resources:", ...crdFiles(CRDS).map((f) => `  - ${f}`)];
  return `# Copies of the repository's crds/, generated with the rest of manifests/deploy (see ../kustomization.yaml).\n${lines.join("\n")}\n`;
}

// ---- the tests ----------------------------------------------------------------------------------------

let binDir = "";
let helm: Helm;
let chartDefault: KubeObject[] = [];
let chartAllOptions: KubeObject[] = [];
let kustomized: KubeObject[] = [];

before(async () => {
  binDir = await ensureControlPlaneBinaries();
  helm = new Helm(binDir);
  if (REGENERATE) {
    writeCrdCopies();
    writeDeployFiles(deployFiles(await template(helm)));
  }
  chartDefault = await template(helm, "--include-crds");
  chartAllOptions = await template(helm, "--include-crds", "--values", ALL_OPTIONS);
  kustomized = await kustomize();
});

after(() => helm?.remove());

describe("the chart", () => {
  test("its appVersion is Vireo's version and its CRDs are byte-identical copies of crds/", () => {
    const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string };
    assert.match(readFileSync(join(CHART, "Chart.yaml"), "utf8"), new RegExp(`^appVersion: "${pkg.version.replaceAll(".", "\\.")}"$`, "m"));
    const regenerate = "regenerate them: see the top of test/deploy/helm.test.ts";
    for (const copy of [join(CHART, "crds"), join(DEPLOY, "crds")]) {
      assert.deepEqual(crdFiles(copy), crdFiles(CRDS), `${copy} holds the same files as crds/: ${regenerate}`);
      for (const f of crdFiles(CRDS)) {
        assert.ok(readFileSync(join(copy, f)).equals(readFileSync(join(CRDS, f))), `${copy}/${f} differs from crds/${f}: ${regenerate}`);
      }
    }
    assert.equal(readFileSync(join(DEPLOY, "crds", "kustomization.yaml"), "utf8"), crdKustomization(), `manifests/deploy/crds/kustomization.yaml lists every CRD: ${regenerate}`);
  });

  test("helm lint --strict passes with default values and with every option on", async () => {
    ok(await helm.run(["lint", "--strict", CHART]), "helm lint --strict");
    ok(await helm.run(["lint", "--strict", CHART, "--values", ALL_OPTIONS]), "helm lint --strict (all options)");
  });

  test("with default values: two controller replicas with leader election and a disruption budget, least-privilege RBAC, hardened pods, NetworkPolicies", () => {
    checkAll(chartDefault, DEFAULTS);
    const secret = only<KubeObject & { data: { token: string } }>(chartDefault, "Secret");
    assert.equal(secret.metadata.name, DEFAULTS.tokenSecret);
    assert.ok(Buffer.from(secret.data.token, "base64").length >= 32, "a generated token of at least 32 characters");
    assert.equal(ofKind(chartDefault, "ServiceMonitor").length, 0, "optional objects are off");
    assert.equal(only<KubeObject & { spec: { minAvailable: number } }>(chartDefault, "PodDisruptionBudget").spec.minAvailable, 1, "two replicas: one stays through a drain");
    assert.deepEqual(ofKind(chartDefault, "NetworkPolicy").map((o) => o.metadata.name).sort(), ["vireo-controller", "vireo-hostsim"]);
    const controller = only<Deployment>(chartDefault, "Deployment", "controller").spec.template.spec.containers[0]!;
    assert.deepEqual(controller.args, ["run", "--leader-elect", "--leader-election-namespace", "$(POD_NAMESPACE)", "--leader-election-id", "vireo-controller", "--provider", "http://vireo-hostsim:9440", "--provider-token-file", "/etc/vireo/hostsim-token/token", "--metrics-addr", "0.0.0.0:8080"]);
    const hostsim = only<Deployment>(chartDefault, "Deployment", "hostsim").spec.template.spec.containers[0]!;
    assert.deepEqual(hostsim.args, ["hostsim", "--listen", "0.0.0.0:9440", "--state", "/data/world.json", "--token-file", "/etc/vireo/hostsim-token/token", "--metrics-addr", "0.0.0.0:9441"]);
  });

  test("with every option on: the same guarantees, plus ServiceMonitor, PodDisruptionBudget, NetworkPolicy and an existing token Secret", () => {
    checkAll(chartAllOptions, { namespace: NAMESPACE, controllerReplicas: 3, tokenSecret: "vireo-hostsim-credentials", tokenKey: "bearer-token" });
    assert.equal(ofKind(chartAllOptions, "Secret").length, 0, "an existing Secret is used, none generated");
    const metrics = only<Service>(chartAllOptions, "Service", "controller");
    const monitor = only<KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; interval: string }[] } }>(chartAllOptions, "ServiceMonitor", "controller");
    assert.ok(selects(monitor.spec.selector.matchLabels, metrics.metadata.labels), "the ServiceMonitor selects the metrics Service");
    assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.interval]), [[metrics.spec.ports[0]!.name, "15s"]]);
    assert.equal(monitor.metadata.labels?.["release"], "prometheus");
    const hostsimMonitor = ofKind<KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] } }>(chartAllOptions, "ServiceMonitor").find((m) => m.metadata.labels?.["app.kubernetes.io/component"] === "hostsim");
    const hostsimMetrics = ofKind<Service>(chartAllOptions, "Service").find((o) => o.spec.ports.some((p) => p.name === "metrics") && o.metadata.labels?.["app.kubernetes.io/component"] === "hostsim");
    assert.ok(hostsimMonitor && hostsimMetrics, "hostsim's metrics have a Service and a ServiceMonitor");
    assert.ok(selects(hostsimMonitor.spec.selector.matchLabels, hostsimMetrics.metadata.labels));
    assert.deepEqual(hostsimMonitor.spec.endpoints.map((e) => e.port), ["metrics"]);
    const pdb = only<KubeObject & { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } }>(chartAllOptions, "PodDisruptionBudget");
    assert.equal(pdb.spec.minAvailable, 1);
    assert.ok(selects(pdb.spec.selector.matchLabels, only<Deployment>(chartAllOptions, "Deployment", "controller").spec.template.metadata.labels));
    const pvc = only<KubeObject & { spec: { storageClassName?: string } }>(chartAllOptions, "PersistentVolumeClaim");
    assert.equal(pvc.spec.storageClassName, "fast-ssd");
    for (const o of chartAllOptions.filter((x) => x.kind !== "CustomResourceDefinition")) assert.equal(o.metadata.labels?.["team"], "platform", `${key(o)} has the extra labels`);
    for (const d of ofKind<Deployment>(chartAllOptions, "Deployment")) {
      assert.equal(d.spec.template.spec.containers[0]!.args?.at(-1)?.startsWith("--"), true, "extra args are passed");
      assert.match(String((d.spec.template.spec.containers[0] as { image?: string }).image), /^registry\.example\.com\/platform\/vireo@sha256:/);
    }
  });

  test("the values schema and the templates refuse what cannot work", async () => {
    const unknown = await helm.run(["template", RELEASE, CHART, "--set", "controller.replica=3"]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /additional properties 'replica' not allowed/);
    const badPolicy = await helm.run(["template", RELEASE, CHART, "--set", "image.pullPolicy=Sometimes"]);
    assert.notEqual(badPolicy.code, 0);
    const noLeader = await helm.run(["template", RELEASE, CHART, "--set", "controller.leaderElection.enabled=false"]);
    assert.notEqual(noLeader.code, 0);
    assert.match(noLeader.stderr, /needs controller\.leaderElection\.enabled/);
    const single = parseAll(ok(await helm.run(["template", RELEASE, CHART, "--set", "controller.leaderElection.enabled=false", "--set", "controller.replicas=1"]), "one replica without leader election"));
    assert.equal(ofKind(single, "Role").length, 0, "no Lease access without leader election");
    assert.equal(ofKind(single, "PodDisruptionBudget").length, 0, "no disruption budget for one replica: it would block every drain");
    const noApiServer = await helm.run(["template", RELEASE, CHART, "--set", "networkPolicy.controllerEgress.enabled=true"]);
    assert.notEqual(noApiServer.code, 0);
    assert.match(noApiServer.stderr, /needs networkPolicy\.controllerEgress\.apiServerCIDRs/);
    const emptyPeer = await helm.run(["template", RELEASE, CHART, "--set", "networkPolicy.prometheusSelector.podSelector=null", "--set", "networkPolicy.prometheusSelector.namespaceSelector=null"]);
    assert.notEqual(emptyPeer.code, 0, "an empty peer would let every pod in");
    assert.match(emptyPeer.stderr, /prometheusSelector/);
    assert.ok(!only<Deployment>(single, "Deployment", "controller").spec.template.spec.containers[0]!.args?.includes("--leader-elect"));
  });
});

describe("manifests/deploy", () => {
  test("is the chart rendered with default values, plus the Namespace, minus the token Secret", () => {
    const files = deployFiles(chartDefault);
    for (const [file, objects] of files) {
      const text = readFileSync(join(DEPLOY, file), "utf8");
      assert.ok(text.startsWith(GENERATED_HEADER), `${file} says it is generated`);
      assert.deepEqual(parseAll(text), objects, `manifests/deploy/${file} is out of date: regenerate it (see the top of this file)`);
    }
    const expected = [...chartDefault.filter((o) => o.kind === "CustomResourceDefinition"), ...[...files.values()].flat()];
    assert.deepEqual(new Map(kustomized.map((o) => [key(o), o])), new Map(expected.map((o) => [key(o), o])), "kubectl kustomize builds exactly these objects");
    assert.equal(ofKind(kustomized, "Secret").length, 0, "no Secret is shipped");
  });

  test("kubectl kustomize builds two controller replicas with leader election, least-privilege RBAC, hardened pods", () => {
    checkAll(kustomized, DEFAULTS);
    assert.equal(only(kustomized, "Namespace").metadata.labels?.["pod-security.kubernetes.io/enforce"], "restricted");
  });
});

describe("against a real API server", () => {
  let cp: ControlPlane;

  before(async () => {
    cp = await ControlPlane.start({ binDir });
    // The test API server has no prometheus-operator: stub ServiceMonitor and PrometheusRule CRDs (v1, any
    // fields accepted) let the all-options rendering, which holds both, be applied.
    for (const [kind, plural] of [["ServiceMonitor", "servicemonitors"], ["PrometheusRule", "prometheusrules"]] as const) {
      const stub = {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        metadata: { name: `${plural}.monitoring.coreos.com` },
        spec: {
          group: "monitoring.coreos.com",
          scope: "Namespaced",
          names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
          versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }],
        },
      };
      ok(await cp.kubectl(["apply", "-f", "-"], { input: JSON.stringify(stub) }), `applying the ${kind} stub CRD`);
      ok(await cp.kubectl(["wait", "--for=condition=Established", `crd/${plural}.monitoring.coreos.com`, "--timeout=120s"], { timeoutMs: 150_000 }), `waiting for the ${kind} stub CRD`);
    }
    // The namespace of the dry runs, as manifests/deploy declares it (restricted Pod Security Standard).
    ok(await cp.kubectl(["apply", "-f", "-"], { input: JSON.stringify(only(kustomized, "Namespace")) }), `creating ${NAMESPACE}`);
  });

  after(async () => {
    await cp?.stop();
  });

  const renderings = [
    ["the chart with default values", () => chartDefault],
    ["the chart with every option on", () => chartAllOptions],
    ["manifests/deploy", () => kustomized],
  ] as const;
  for (const [name, objects] of renderings) {
    test(`${name}: accepted by the API server (server-side dry run), NetworkPolicies and all, within the restricted Pod Security Standard`, async () => {
      const input = objects().map((o) => `---\n${dump(o, { lineWidth: -1, noRefs: true })}`).join("");
      const applied = await cp.kubectl(["apply", "--dry-run=server", "-f", "-"], { input });
      const out = ok(applied, `kubectl apply --dry-run=server of ${name}`);
      assert.doesNotMatch(applied.stderr, /would violate PodSecurity/, applied.stderr);
      for (const o of objects()) assert.match(out, new RegExp(`/${o.metadata.name} .*\\(server dry run\\)`), `${key(o)} applied`);
      assert.ok(objects().filter((o) => o.kind === "NetworkPolicy").length >= 2, "the NetworkPolicies are among them");
    });
  }

  test("helm install grants the controller exactly what it needs, and helm upgrade keeps the generated token", async () => {
    const ns = "vireo-helm";
    const kubeconfig = ["--kubeconfig", cp.kubeconfigPath];
    const installed = ok(await helm.run(["install", RELEASE, CHART, "--namespace", ns, "--create-namespace", ...kubeconfig]), "helm install");
    assert.match(installed, /STATUS: deployed/);
    assert.match(installed, /kept on upgrades/, "NOTES.txt is shown");
    const token = async (): Promise<string> => ok(await cp.kubectl(["-n", ns, "get", "secret", "vireo-hostsim-token", "-o", "jsonpath={.data.token}"]), "reading the token");
    const first = await token();
    assert.ok(first.length > 0);

    ok(await helm.run(["upgrade", RELEASE, CHART, "--namespace", ns, "--set", "logLevel=debug", ...kubeconfig]), "helm upgrade");
    assert.equal(await token(), first, "the token is not rotated by an upgrade");
    const env = ok(await cp.kubectl(["-n", ns, "get", "deployment", "vireo-controller", "-o", "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"VIREO_LOG_LEVEL\")].value}"]), "reading the upgraded Deployment");
    assert.equal(env, "debug", "the upgrade was applied");

    // What the API server's authorizer says the controller's ServiceAccount may do.
    const can = async (namespace: string, ...args: string[]): Promise<boolean> => {
      const r = await cp.kubectl(["auth", "can-i", "-n", namespace, `--as=system:serviceaccount:${ns}:vireo-controller`, ...args]);
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      return r.code === 0;
    };
    const granted: [string, ...string[]][] = [
      ["shop", "watch", "virtualmachines.vireo.dev"],
      ["shop", "patch", "virtualmachines.vireo.dev", "--subresource=status"],
      ["shop", "update", "virtualmachines.vireo.dev", "--subresource=finalizers"],
      ["default", "list", "hosts.vireo.dev"],
      ["default", "update", "hostclusters.vireo.dev", "--subresource=status"],
      ["shop", "watch", "virtualmachinemigrations.vireo.dev"],
      ["shop", "patch", "virtualmachinemigrations.vireo.dev", "--subresource=status"],
      ["shop", "update", "virtualmachinemigrations.vireo.dev", "--subresource=finalizers"],
      ["shop", "watch", "recoveryplans.vireo.dev"],
      ["shop", "patch", "recoveryplans.vireo.dev", "--subresource=status"],
      ["shop", "update", "recoveryplans.vireo.dev", "--subresource=finalizers"],
      // A lab's VMs: made, applied and removed by the controller; the lab itself watched, reported, and
      // deleted when its storage lease runs out.
      ["shop", "create", "virtualmachines.vireo.dev"],
      ["shop", "patch", "virtualmachines.vireo.dev"],
      ["shop", "delete", "virtualmachines.vireo.dev"],
      ["shop", "watch", "labtopologies.vireo.dev"],
      ["shop", "delete", "labtopologies.vireo.dev"],
      ["shop", "patch", "labtopologies.vireo.dev", "--subresource=status"],
      ["shop", "update", "labtopologies.vireo.dev", "--subresource=finalizers"],
      ["shop", "create", "events"],
      ["shop", "patch", "events.events.k8s.io"],
      [ns, "create", "leases.coordination.k8s.io"],
      [ns, "update", "leases.coordination.k8s.io/vireo-controller"],
    ];
    const denied: [string, ...string[]][] = [
      // Labs are asked for by people; only the VMs a lab makes are the controller's to create.
      ["shop", "create", "labtopologies.vireo.dev"],
      ["shop", "deletecollection", "labtopologies.vireo.dev"],
      ["default", "delete", "hosts.vireo.dev"],
      ["shop", "delete", "recoveryplans.vireo.dev"],
      ["default", "create", "hosts.vireo.dev"],
      ["default", "create", "hostclusters.vireo.dev"],
      ["default", "create", "faults.vireo.dev"],
      ["shop", "create", "hapolicies.vireo.dev"],
      ["shop", "deletecollection", "virtualmachines.vireo.dev"],
      // Migrations are asked for by people (kubectl, vireo migrate, vireo balance approve), never by the controller.
      ["shop", "create", "virtualmachinemigrations.vireo.dev"],
      ["shop", "delete", "virtualmachinemigrations.vireo.dev"],
      // So are recovery plans: running one is an operator's decision.
      ["shop", "create", "recoveryplans.vireo.dev"],
      [ns, "get", "secrets"],
      ["shop", "list", "pods"],
      [ns, "update", "leases.coordination.k8s.io/someone-else"],
      ["default", "create", "leases.coordination.k8s.io"],
      ["shop", "delete", "events"],
    ];
    // The authorizer learns of new bindings through its own watch, which a busy API server can deliver a
    // moment after helm returned: wait until it grants what the chart grants (at once, almost always).
    const notGranted = async (): Promise<string[]> => {
      const missing: string[] = [];
      for (const [namespace, ...args] of granted) if (!(await can(namespace, ...args))) missing.push(`${args.join(" ")} in ${namespace}`);
      return missing;
    };
    const deadline = Date.now() + WAIT_MS;
    let missing = await notGranted();
    while (missing.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      missing = await notGranted();
    }
    assert.deepEqual(missing, [], "the controller's ServiceAccount may do these");
    for (const [namespace, ...args] of denied) assert.equal(await can(namespace, ...args), false, `may not ${args.join(" ")} in ${namespace}`);
    const hostsim = await cp.kubectl(["auth", "can-i", "-n", ns, `--as=system:serviceaccount:${ns}:vireo-hostsim`, "get", "virtualmachines.vireo.dev"]);
    assert.equal(hostsim.code, 1, "the simulated hosts' account may do nothing");

    ok(await helm.run(["uninstall", RELEASE, "--namespace", ns, ...kubeconfig]), "helm uninstall");
    const left = await cp.kubectl(["get", "clusterrole", "vireo-controller"]);
    assert.notEqual(left.code, 0, "uninstall removes the ClusterRole");
  });
});
