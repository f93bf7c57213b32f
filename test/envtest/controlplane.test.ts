// End-to-end check of the envtest harness against a real control plane:
// garbage collection, namespace deletion, and a kube-apiserver restart.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { ControlPlane } from "./controlplane.ts";

let cp: ControlPlane;

before(async () => {
  cp = await ControlPlane.start({ controllerManager: true });
});

after(async () => {
  await cp?.stop();
});

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/** Polls until `kubectl get` reports NotFound, or fails after deadlineMs. */
async function waitGone(args: string[], deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let last = "";
  while (Date.now() < deadline) {
    const r = await cp.kubectl(["get", ...args, "-o", "name"]);
    if (r.code !== 0 && /NotFound|not found/.test(r.stderr)) return;
    last = `code ${r.code}: ${r.stdout}${r.stderr}`;
    await new Promise((res) => setTimeout(res, 250));
  }
  assert.fail(`${args.join(" ")} still present after ${deadlineMs} ms (last: ${last})`);
}

test("kubeconfig works with kubectl and reports the pinned server version", async () => {
  const out = JSON.parse(await kubectlOk(["version", "-o", "json"])) as { serverVersion?: { gitVersion?: string } };
  assert.match(out.serverVersion?.gitVersion ?? "", /^v1\.\d+\.\d+/);
});

test("garbage collector removes a dependent once its owner is deleted", async () => {
  await kubectlOk(["create", "namespace", "gc-test"]);
  await kubectlOk(["-n", "gc-test", "create", "configmap", "owner", "--from-literal=k=v"]);
  const uid = (await kubectlOk(["-n", "gc-test", "get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}"])).trim();
  assert.ok(uid.length > 0);
  const dependent = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "dependent",
      namespace: "gc-test",
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid }],
    },
    data: { k: "v" },
  };
  await kubectlOk(["apply", "-f", "-"], JSON.stringify(dependent));
  await kubectlOk(["-n", "gc-test", "get", "configmap", "dependent"]);

  await kubectlOk(["-n", "gc-test", "delete", "configmap", "owner", "--wait=false"]);
  await waitGone(["-n", "gc-test", "configmap", "dependent"], 60_000);

  await kubectlOk(["delete", "namespace", "gc-test", "--wait=false"]);
  await waitGone(["namespace", "gc-test"], 60_000);
});

test("kube-apiserver restarts on the same port and etcd", async () => {
  await kubectlOk(["create", "configmap", "survivor", "--from-literal=k=v"]);
  await cp.stopApiServer();
  const down = await cp.kubectl(["get", "configmap", "survivor"], { timeoutMs: 20_000 });
  assert.notEqual(down.code, 0, "kubectl should fail while kube-apiserver is stopped");
  await cp.startApiServer();
  const out = await kubectlOk(["get", "configmap", "survivor", "-o", "jsonpath={.data.k}"]);
  assert.equal(out, "v");
});
