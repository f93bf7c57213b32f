// Who may reach what, read from the NetworkPolicies of every rendering as a network plugin enforces them
// (policies select pods in their own namespace; a pod selected by none is open; a peer's podSelector alone
// means the policy's namespace; ports by name or number): only the controller reaches hostsim's API, only
// Prometheus reaches the metrics ports, hostsim reaches nothing, and with controllerEgress the controller
// reaches only hostsim, DNS and the API server. The API server's acceptance of the same objects is
// helm.test.ts's server-side dry run.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ALL_OPTIONS, NAMESPACE, Renderer, parseAll } from "./renderings.ts";
import type { KubeObject } from "./renderings.ts";

interface Selector { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] }
interface Peer { podSelector?: Selector; namespaceSelector?: Selector; ipBlock?: { cidr: string; except?: string[] } }
interface PolicyPort { port?: string | number; protocol?: string }
interface Rule { from?: Peer[]; to?: Peer[]; ports?: PolicyPort[] }
interface Policy extends KubeObject { spec: { podSelector: Selector; policyTypes: string[]; ingress?: Rule[]; egress?: Rule[] } }
interface Deployment extends KubeObject {
  spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports?: { name: string; containerPort: number }[] }[] } } };
}

/** A pod as the policies see it: its namespace (and that namespace's labels), labels, named ports; or an address. */
interface Endpoint { namespace?: string; namespaceLabels?: Record<string, string>; labels?: Record<string, string>; ports?: Record<string, number>; ip?: string }

function selectorMatches(selector: Selector | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpression = (selector.matchExpressions ?? []).every((e) => {
    if (e.operator === "In") return e.values!.includes(labels[e.key] ?? "\0");
    if (e.operator === "NotIn") return !e.values!.includes(labels[e.key] ?? "\0");
    if (e.operator === "Exists") return e.key in labels;
    if (e.operator === "DoesNotExist") return !(e.key in labels);
    throw new Error(`operator ${e.operator}`);
  });
  return byLabel && byExpression;
}

function ipv4(ip: string): number {
  return ip.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base!) / size);
}

function peerMatches(peer: Peer, endpoint: Endpoint, policyNamespace: string): boolean {
  if (peer.ipBlock) return endpoint.ip !== undefined && inCidr(endpoint.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => inCidr(endpoint.ip!, c));
  if (endpoint.namespace === undefined) return false;
  const namespaceOk = peer.namespaceSelector ? selectorMatches(peer.namespaceSelector, endpoint.namespaceLabels) : endpoint.namespace === policyNamespace;
  return namespaceOk && selectorMatches(peer.podSelector, endpoint.labels);
}

function portMatches(ports: PolicyPort[] | undefined, port: number, named: Record<string, number> = {}): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => p.port === undefined || p.port === port || (typeof p.port === "string" && named[p.port] === port));
}

/** Whether `from` may open a TCP connection to `to` on `port`: both its egress and the target's ingress allow it. */
function allowed(policies: readonly Policy[], from: Endpoint, to: Endpoint, port: number): boolean {
  const selecting = (endpoint: Endpoint, type: string) =>
    policies.filter((p) => endpoint.namespace !== undefined && p.metadata.namespace === endpoint.namespace && selectorMatches(p.spec.podSelector, endpoint.labels) && p.spec.policyTypes.includes(type));
  const egress = selecting(from, "Egress");
  const out = egress.length === 0 || egress.some((p) => (p.spec.egress ?? []).some((r) => portMatches(r.ports, port, to.ports) && (!r.to || r.to.some((peer) => peerMatches(peer, to, p.metadata.namespace!)))));
  const ingress = selecting(to, "Ingress");
  const into = ingress.length === 0 || ingress.some((p) => (p.spec.ingress ?? []).some((r) => portMatches(r.ports, port, to.ports) && (!r.from || r.from.some((peer) => peerMatches(peer, from, p.metadata.namespace!)))));
  return out && into;
}

function pod(deployment: Deployment): Endpoint {
  const ports = Object.fromEntries(deployment.spec.template.spec.containers.flatMap((c) => c.ports ?? []).map((p) => [p.name, p.containerPort]));
  return { namespace: NAMESPACE, namespaceLabels: { "kubernetes.io/metadata.name": NAMESPACE }, labels: deployment.spec.template.metadata.labels, ports };
}

function inNamespace(namespace: string, labels: Record<string, string>): Endpoint {
  return { namespace, namespaceLabels: { "kubernetes.io/metadata.name": namespace }, labels };
}

interface Fleet { policies: Policy[]; controller: Endpoint; hostsim: Endpoint }

function fleet(objects: readonly KubeObject[]): Fleet {
  const deployment = (component: string) => objects.find((o) => o.kind === "Deployment" && o.metadata.labels?.["app.kubernetes.io/component"] === component) as Deployment;
  return { policies: objects.filter((o): o is Policy => o.kind === "NetworkPolicy"), controller: pod(deployment("controller")), hostsim: pod(deployment("hostsim")) };
}

const port = (endpoint: Endpoint, name: string): number => {
  const number = endpoint.ports?.[name];
  assert.ok(number, `port ${name}`);
  return number;
};

let renderer: Renderer;
const renderings = new Map<string, KubeObject[]>();

before(async () => {
  renderer = await Renderer.create();
  renderings.set("defaults", parseAll(await renderer.chart()));
  renderings.set("all", parseAll(await renderer.chart("--values", ALL_OPTIONS)));
  renderings.set("kustomize", parseAll(await renderer.kustomization()));
});

after(() => renderer?.remove());

describe("the NetworkPolicies", () => {
  // The Prometheus each rendering expects: any namespace by default; the platform's, in monitoring, with every option.
  const prometheus: Record<string, Endpoint> = {
    defaults: inNamespace("monitoring", { "app.kubernetes.io/name": "prometheus" }),
    kustomize: inNamespace("monitoring", { "app.kubernetes.io/name": "prometheus" }),
    all: inNamespace("monitoring", { "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "platform" }),
  };

  for (const name of ["defaults", "all", "kustomize"]) {
    test(`${name}: only the controller reaches hostsim's API, only Prometheus the metrics ports, and hostsim reaches nothing`, () => {
      const { policies, controller, hostsim } = fleet(renderings.get(name)!);
      const scraper = prometheus[name]!;
      const neighbour = inNamespace(NAMESPACE, { app: "debug" });
      const impostor = inNamespace("attacker", controller.labels!);
      const api = port(hostsim, "hostsim");

      assert.ok(allowed(policies, controller, hostsim, api), "the controller reaches hostsim's API");
      for (const [who, from] of [["a pod beside it", neighbour], ["a pod with the controller's labels in another namespace", impostor], ["Prometheus", scraper]] as const) {
        assert.ok(!allowed(policies, from, hostsim, api), `${who} does not reach hostsim's API`);
      }
      for (const target of [hostsim, controller]) {
        assert.ok(allowed(policies, scraper, target, port(target, "metrics")), "Prometheus scrapes");
        assert.ok(!allowed(policies, neighbour, target, port(target, "metrics")), "nobody else does");
        assert.ok(!allowed(policies, inNamespace("monitoring", { "app.kubernetes.io/name": "grafana" }), target, port(target, "metrics")), "not even beside Prometheus");
      }
      for (const to of [controller, neighbour, { ip: "10.0.0.10" }, { ip: "93.184.216.34" }]) {
        assert.ok(!allowed(policies, hostsim, { ...to, ports: { any: 443 } }, 443), "hostsim opens no connection");
      }
    });
  }

  test("defaults: the controller's egress is open (the API server's addresses are the cluster's), its console not served", () => {
    const { policies, controller } = fleet(renderings.get("defaults")!);
    assert.ok(allowed(policies, controller, { ip: "10.96.0.1" }, 443));
    assert.equal(controller.ports?.["console"], undefined);
  });

  test("every option: the controller reaches only hostsim, DNS and the API server; the console only from the ingress namespace", () => {
    const { policies, controller, hostsim } = fleet(renderings.get("all")!);
    const dns = inNamespace("kube-system", { "k8s-app": "kube-dns" });
    assert.ok(allowed(policies, controller, hostsim, port(hostsim, "hostsim")));
    assert.ok(!allowed(policies, controller, hostsim, port(hostsim, "metrics")), "not hostsim's metrics");
    assert.ok(allowed(policies, controller, dns, 53));
    assert.ok(!allowed(policies, controller, dns, 443));
    assert.ok(allowed(policies, controller, { ip: "10.0.0.10" }, 6443));
    assert.ok(allowed(policies, controller, { ip: "10.0.0.11" }, 443));
    assert.ok(!allowed(policies, controller, { ip: "10.0.0.12" }, 6443), "no other address");
    assert.ok(!allowed(policies, controller, inNamespace("default", { app: "web" }), 80), "no other pod");
    const console = port(controller, "console");
    assert.ok(allowed(policies, inNamespace("ingress-nginx", { "app.kubernetes.io/name": "ingress-nginx" }), controller, console));
    assert.ok(!allowed(policies, inNamespace(NAMESPACE, { app: "debug" }), controller, console));
  });
});
