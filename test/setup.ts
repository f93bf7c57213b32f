// Everything the test suite needs on a fresh machine, installed or built when missing: the Kubernetes
// control plane (etcd, kube-apiserver, kube-controller-manager), kube-scheduler (the cluster benchmark's smoke
// test runs it) and helm, built from the Go module proxy into a cache outside the repository and reused when
// present; Prometheus, Lua 5.1 and kstatus for the observability tests (test/tools/setup.ts).

import { ensureControlPlaneBinaries, ensureKubeScheduler } from "./envtest/setup.ts";
import { ensureObservabilityTools } from "./tools/setup.ts";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  console.error(`tests run on Node 24 (the devDependency); this is ${process.version}: run them through npm`);
  process.exit(1);
}

const dir = await ensureControlPlaneBinaries();
console.error(`test control plane: ${dir}`);
// After the control plane, whose packages it shares in Go's build cache: it then builds in seconds.
console.error(`kube-scheduler: ${await ensureKubeScheduler()}`);
await ensureObservabilityTools();
