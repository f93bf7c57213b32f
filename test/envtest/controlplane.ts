// A real Kubernetes control plane for tests: etcd, kube-apiserver and
// kube-controller-manager on free loopback ports, in a fresh temp dir.
//
//   const cp = await ControlPlane.start();            // installs crds/*.yaml
//   await cp.kubectl(["get", "ns"]);                   // admin kubeconfig
//   process.env.KUBECONFIG = cp.kubeconfigPath;        // for other clients
//   await cp.stop();
//
// The binaries come from ./setup.ts (KUBEBUILDER_ASSETS or the build cache).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, rmSync } from "node:fs";
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureControlPlaneBinaries, pidAlive } from "./setup.ts";

const here = dirname(fileURLToPath(import.meta.url));
const DEFAULT_CRD_DIR = resolve(here, "../../crds");

export interface ControlPlaneOptions {
  /** Directory whose *.yaml/*.yml files are applied after start (default: the repo's crds/; skipped when absent). */
  crdDir?: string;
  /** Directory holding etcd, kube-apiserver, kube-controller-manager (default: ensureControlPlaneBinaries()). */
  binDir?: string;
  /**
   * Run kube-controller-manager (namespace deletion, garbage collection, ...).
   * Default: run it when binDir has it. true: fail when it is missing.
   */
  controllerManager?: boolean;
  /** Timeout for each component to become ready, in ms (default 120 s). */
  readyTimeoutMs?: number;
  /** Extra flags for kube-apiserver (appended; later flags win). */
  apiServerFlags?: string[];
  /** Extra flags for kube-controller-manager (appended; later flags win). */
  controllerManagerFlags?: string[];
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when killed by a signal or the timeout. */
  code: number;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (use with `-f -`). */
  input?: string;
  /** Kill kubectl after this many ms (default 60 s). */
  timeoutMs?: number;
}

export type Component = "etcd" | "kube-apiserver" | "kube-controller-manager";

/** A child process whose output goes to a log file. */
class Proc {
  readonly name: Component;
  readonly logPath: string;
  readonly child: ChildProcess;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  exited = false;
  readonly done: Promise<void>;

  constructor(name: Component, bin: string, args: string[], logPath: string, cwd: string) {
    this.name = name;
    this.logPath = logPath;
    const fd = openSync(logPath, "a");
    try {
      // With setpriv --pdeathsig the child is SIGKILLed by the kernel even if
      // this node process dies without running any exit handler.
      const [cmd, argv] = PDEATHSIG ? ["setpriv", ["--pdeathsig", "KILL", "--", bin, ...args]] : [bin, args];
      this.child = spawn(cmd, argv, { cwd, stdio: ["ignore", fd, fd], env: childEnv() });
    } finally {
      closeSync(fd);
    }
    this.done = new Promise((res) => {
      this.child.once("exit", (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        live.delete(this);
        res();
      });
      this.child.once("error", (err) => {
        this.exited = true;
        this.exitCode = -1;
        live.delete(this);
        void writeFile(this.logPath, `\nspawn error: ${err.message}\n`, { flag: "a" });
        res();
      });
    });
    live.add(this);
  }

  describeExit(): string {
    return this.exitSignal ? `killed by ${this.exitSignal}` : `exited with code ${this.exitCode}`;
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((res) => {
      timer = setTimeout(() => {
        if (!this.exited) this.child.kill("SIGKILL");
        res();
      }, graceMs);
    });
    await Promise.race([this.done, killed]);
    clearTimeout(timer);
    await this.done;
  }
}

const PDEATHSIG = (() => {
  try {
    return spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore" }).status === 0;
  } catch {
    return false;
  }
})();

function childEnv(): NodeJS.ProcessEnv {
  // Proxies must never be used for the loopback control plane.
  const env = { ...process.env };
  for (const k of ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"]) delete env[k];
  env["NO_PROXY"] = "127.0.0.1,localhost";
  return env;
}

// ---- cleanup on process exit --------------------------------------------

const live = new Set<Proc>();
const liveDirs = new Set<string>();
let handlersInstalled = false;

function cleanupSync(): void {
  for (const p of live) {
    try {
      p.child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const d of liveDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", cleanupSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      cleanupSync();
      process.removeListener(sig, handler);
      // Re-raise, so that the default action (or other listeners) apply.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

// ---- helpers --------------------------------------------------------------

const DIR_PREFIX = "vireo-envtest-";
const OWNER_FILE = "owner.pid";

/**
 * Removes the temp dirs of earlier control planes whose node process died
 * without cleaning up (SIGKILL, OOM); their children died with them
 * (pdeathsig). Dirs of live processes, or without an owner file, are kept.
 */
async function removeStaleDirs(): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(tmpdir())).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    const d = join(tmpdir(), n);
    const pid = Number.parseInt(await readFile(join(d, OWNER_FILE), "utf8").catch(() => ""), 10);
    if (!Number.isInteger(pid) || pid <= 0 || pidAlive(pid)) continue;
    await rm(d, { recursive: true, force: true }).catch(() => undefined);
  }
}


async function freePorts(n: number): Promise<number[]> {
  const servers = [];
  const ports: number[] = [];
  try {
    // Hold all listeners open until every port is picked, so they differ.
    for (let i = 0; i < n; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((res, rej) => {
        srv.once("error", rej);
        srv.listen(0, "127.0.0.1", () => res());
      });
      const addr = srv.address();
      if (!addr || typeof addr === "string") throw new Error("cannot get a free port");
      ports.push(addr.port);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
  }
  return ports;
}

async function tail(path: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(path, "utf8");
    return text.split("\n").slice(-lines - 1).join("\n");
  } catch {
    return "(no log)";
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, 0o1);
    return true;
  } catch {
    return false;
  }
}

interface Probe {
  url: string;
  ca?: string;
  token?: string;
  insecure?: boolean;
}

/** GET url; resolves with the status code, or 0 on a connection error. */
function probe(p: Probe): Promise<{ status: number; body: string }> {
  return new Promise((res) => {
    const u = new URL(p.url);
    const headers: Record<string, string> = {};
    if (p.token) headers["Authorization"] = `Bearer ${p.token}`;
    const opts = { method: "GET", headers, timeout: 5000 };
    const onRes = (r: IncomingMessage): void => {
      let body = "";
      r.setEncoding("utf8");
      r.on("data", (c: string) => (body += c));
      r.on("end", () => res({ status: r.statusCode ?? 0, body }));
      r.on("error", () => res({ status: 0, body }));
    };
    const req =
      u.protocol === "https:"
        ? httpsRequest(u, { ...opts, ca: p.ca, rejectUnauthorized: !p.insecure }, onRes)
        : httpRequest(u, opts, onRes);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => res({ status: 0, body: e.message }));
    req.end();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- the control plane -----------------------------------------------------

export class ControlPlane {
  /** Temp dir holding data, keys, certs, logs and the kubeconfig; removed by stop(). */
  readonly dir: string;
  /** Directory of the binaries in use. */
  readonly binDir: string;
  /** Admin kubeconfig (user in group system:masters), usable with kubectl. */
  readonly kubeconfigPath: string;
  /** kube-apiserver URL, https://127.0.0.1:PORT */
  readonly server: string;
  /** Bearer token of the admin user. */
  readonly token: string;
  /** PEM file with the apiserver's serving certificate chain (its CA included). */
  readonly caFile: string;
  /** etcd client URL, http://127.0.0.1:PORT */
  readonly etcdUrl: string;
  /** Whether kube-controller-manager runs. */
  readonly hasControllerManager: boolean;

  private readonly opts: ControlPlaneOptions;
  private readonly apiPort: number;
  private readonly kcmPort: number;
  private readonly etcdPeerPort: number;
  private readonly readyTimeoutMs: number;
  private etcd: Proc | undefined;
  private apiServer: Proc | undefined;
  private controllerManager: Proc | undefined;
  private stopped = false;

  private constructor(init: {
    dir: string;
    binDir: string;
    ports: number[];
    token: string;
    hasControllerManager: boolean;
    opts: ControlPlaneOptions;
  }) {
    const [etcdClient, etcdPeer, api, kcm] = init.ports as [number, number, number, number];
    this.dir = init.dir;
    this.binDir = init.binDir;
    this.opts = init.opts;
    this.token = init.token;
    this.hasControllerManager = init.hasControllerManager;
    this.apiPort = api;
    this.kcmPort = kcm;
    this.etcdPeerPort = etcdPeer;
    this.etcdUrl = `http://127.0.0.1:${etcdClient}`;
    this.server = `https://127.0.0.1:${api}`;
    this.kubeconfigPath = join(init.dir, "kubeconfig");
    this.caFile = join(init.dir, "apiserver-certs", "apiserver.crt");
    this.readyTimeoutMs = init.opts.readyTimeoutMs ?? 120_000;
  }

  /** Environment for child programs that should talk to this control plane. */
  get env(): Record<string, string> {
    return { KUBECONFIG: this.kubeconfigPath };
  }

  /** Path of a component's log file (in dir). */
  logPath(component: Component): string {
    return join(this.dir, `${component}.log`);
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const binDir = opts.binDir ?? (await ensureControlPlaneBinaries());
    for (const b of ["etcd", "kube-apiserver"]) {
      if (!(await isExecutable(join(binDir, b)))) throw new Error(`no ${b} in ${binDir}`);
    }
    const kcmPresent = await isExecutable(join(binDir, "kube-controller-manager"));
    if (opts.controllerManager === true && !kcmPresent) throw new Error(`no kube-controller-manager in ${binDir}`);
    const hasControllerManager = opts.controllerManager !== false && kcmPresent;
    if (!hasControllerManager && opts.controllerManager === undefined) {
      process.stderr.write(`[envtest] no kube-controller-manager in ${binDir}: namespace deletion and GC will not run\n`);
    }

    if (opts.crdDir !== undefined && !(await stat(opts.crdDir).then((st) => st.isDirectory(), () => false))) {
      throw new Error(`crdDir ${opts.crdDir} is not a directory`);
    }

    installExitHandlers();
    await removeStaleDirs();
    const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
    liveDirs.add(dir);
    await writeFile(join(dir, OWNER_FILE), String(process.pid));
    const cp = new ControlPlane({
      dir,
      binDir,
      ports: await freePorts(4),
      token: randomBytes(24).toString("hex"),
      hasControllerManager,
      opts,
    });
    try {
      await cp.prepare();
      await cp.startEtcd();
      await cp.startApiServer();
      await cp.writeKubeconfig();
      if (hasControllerManager) await cp.startControllerManager();
      await cp.installCrds();
    } catch (e) {
      const err = e as Error;
      await cp.stop().catch(() => undefined);
      throw err;
    }
    return cp;
  }

  private async prepare(): Promise<void> {
    await mkdir(join(this.dir, "etcd-data"), { mode: 0o700 });
    await mkdir(join(this.dir, "apiserver-certs"));
    await mkdir(join(this.dir, "kcm-certs"));
    await mkdir(join(this.dir, "pki"));
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
    });
    await writeFile(join(this.dir, "pki", "sa.key"), privateKey, { mode: 0o600 });
    await writeFile(join(this.dir, "pki", "sa.pub"), publicKey);
    // token,user,uid,"group1,group2"
    await writeFile(
      join(this.dir, "pki", "tokens.csv"),
      `${this.token},envtest-admin,envtest-admin,"system:masters"\n`,
      { mode: 0o600 },
    );
  }

  private async waitFor(
    proc: Proc,
    what: string,
    check: () => Promise<boolean>,
    timeoutMs = this.readyTimeoutMs,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exited) {
        throw new Error(
          `${proc.name} ${proc.describeExit()} before ${what}; tail of ${proc.logPath}:\n${await tail(proc.logPath)}`,
        );
      }
      if (await check()) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${proc.name}: timed out after ${timeoutMs} ms waiting for ${what}; tail of ${proc.logPath}:\n${await tail(proc.logPath)}`,
        );
      }
      await sleep(250);
    }
  }

  private async startEtcd(): Promise<void> {
    const peer = `http://127.0.0.1:${this.etcdPeerPort}`;
    const args = [
      "--name=envtest",
      `--data-dir=${join(this.dir, "etcd-data")}`,
      `--listen-client-urls=${this.etcdUrl}`,
      `--advertise-client-urls=${this.etcdUrl}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=envtest=${peer}`,
      "--initial-cluster-state=new",
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ];
    this.etcd = new Proc("etcd", join(this.binDir, "etcd"), args, this.logPath("etcd"), this.dir);
    await this.waitFor(this.etcd, "etcd /health", async () => {
      const r = await probe({ url: `${this.etcdUrl}/health` });
      return r.status === 200 && r.body.includes('"true"');
    });
  }

  private apiServerArgs(): string[] {
    const pki = join(this.dir, "pki");
    return [
      `--etcd-servers=${this.etcdUrl}`,
      `--cert-dir=${join(this.dir, "apiserver-certs")}`,
      "--advertise-address=127.0.0.1",
      "--bind-address=127.0.0.1",
      `--secure-port=${this.apiPort}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--authorization-mode=RBAC",
      `--token-auth-file=${join(pki, "tokens.csv")}`,
      "--service-account-issuer=https://localhost",
      `--service-account-key-file=${join(pki, "sa.pub")}`,
      `--service-account-signing-key-file=${join(pki, "sa.key")}`,
      // Without it, SIGTERM waits 60 s for the controller manager's open
      // watches before the HTTP server gives up; with it, ~1 s.
      "--shutdown-watch-termination-grace-period=2s",
      ...(this.opts.apiServerFlags ?? []),
    ];
  }

  /** Starts kube-apiserver (again, after stopApiServer()) on the same port and etcd; waits for /readyz. */
  async startApiServer(): Promise<void> {
    if (this.stopped) throw new Error("control plane is stopped");
    if (this.apiServer && !this.apiServer.exited) throw new Error("kube-apiserver is already running");
    const proc = new Proc(
      "kube-apiserver",
      join(this.binDir, "kube-apiserver"),
      this.apiServerArgs(),
      this.logPath("kube-apiserver"),
      this.dir,
    );
    this.apiServer = proc;
    // The apiserver writes its self-signed serving cert (and CA) into --cert-dir.
    await this.waitFor(proc, `its serving certificate ${this.caFile}`, async () => existsSync(this.caFile));
    let ca: string | undefined;
    let last = "";
    await this.waitFor(proc, "/readyz", async () => {
      ca ??= await readFile(this.caFile, "utf8").catch(() => undefined);
      if (!ca?.includes("-----END CERTIFICATE-----")) {
        ca = undefined;
        return false;
      }
      const r = await probe({ url: `${this.server}/readyz`, ca, token: this.token });
      last = `${r.status} ${r.body.slice(0, 200)}`;
      return r.status === 200;
    }).catch((e: Error) => {
      throw new Error(`${e.message}\nlast /readyz answer: ${last}`);
    });
  }

  /** Stops kube-apiserver alone (etcd and the controller manager keep running). */
  async stopApiServer(): Promise<void> {
    await this.apiServer?.stop();
  }

  private async writeKubeconfig(): Promise<void> {
    const caData = Buffer.from(await readFile(this.caFile)).toString("base64");
    const kubeconfig = [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: envtest",
      "  cluster:",
      `    server: ${this.server}`,
      `    certificate-authority-data: ${caData}`,
      "users:",
      "- name: envtest-admin",
      "  user:",
      `    token: ${this.token}`,
      "contexts:",
      "- name: envtest",
      "  context:",
      "    cluster: envtest",
      "    user: envtest-admin",
      "    namespace: default",
      "current-context: envtest",
      "",
    ].join("\n");
    await writeFile(this.kubeconfigPath, kubeconfig, { mode: 0o600 });
  }

  private async startControllerManager(): Promise<void> {
    const args = [
      `--kubeconfig=${this.kubeconfigPath}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${this.kcmPort}`,
      `--cert-dir=${join(this.dir, "kcm-certs")}`,
      "--leader-elect=false",
      "--use-service-account-credentials=false",
      `--service-account-private-key-file=${join(this.dir, "pki", "sa.key")}`,
      `--root-ca-file=${this.caFile}`,
      "--controllers=*",
      ...(this.opts.controllerManagerFlags ?? []),
    ];
    const proc = new Proc(
      "kube-controller-manager",
      join(this.binDir, "kube-controller-manager"),
      args,
      this.logPath("kube-controller-manager"),
      this.dir,
    );
    this.controllerManager = proc;
    await this.waitFor(proc, "/healthz", async () => {
      // Its self-signed serving cert is of no interest: loopback, our own child.
      const r = await probe({ url: `https://127.0.0.1:${this.kcmPort}/healthz`, insecure: true });
      return r.status === 200;
    });
  }

  private async installCrds(): Promise<void> {
    const explicit = this.opts.crdDir !== undefined;
    const crdDir = this.opts.crdDir ?? DEFAULT_CRD_DIR;
    let entries: string[];
    try {
      entries = await readdir(crdDir);
    } catch (e) {
      if (explicit) throw new Error(`crdDir ${crdDir}: ${(e as Error).message}`);
      return; // the repo has no crds/ yet
    }
    const files = entries.filter((f) => /\.ya?ml$/.test(f)).sort();
    if (files.length === 0) return;
    const applied = await this.kubectl([
      "apply",
      "--server-side",
      "--field-manager=envtest",
      "-o",
      "name",
      ...files.flatMap((f) => ["-f", join(crdDir, f)]),
    ]);
    if (applied.code !== 0) throw new Error(`kubectl apply of ${crdDir} failed:\n${applied.stderr}${applied.stdout}`);
    const crds = applied.stdout
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("customresourcedefinition."));
    if (crds.length === 0) return;
    const waited = await this.kubectl(["wait", "--for", "condition=established", "--timeout=60s", ...crds], {
      timeoutMs: 90_000,
    });
    if (waited.code !== 0) throw new Error(`CRDs of ${crdDir} not Established:\n${waited.stderr}${waited.stdout}`);
  }

  /** Runs the kubectl on PATH (or $KUBECTL, or binDir/kubectl) with the admin kubeconfig. */
  kubectl(args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
    const bin = process.env["KUBECTL"] || (existsSync(join(this.binDir, "kubectl")) ? join(this.binDir, "kubectl") : "kubectl");
    return new Promise((res) => {
      const child = spawn(bin, [`--kubeconfig=${this.kubeconfigPath}`, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
        env: childEnv(),
      });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
      child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
      const timer = setTimeout(() => {
        stderr += `\n(kubectl killed after ${opts.timeoutMs ?? 60_000} ms)`;
        child.kill("SIGKILL");
      }, opts.timeoutMs ?? 60_000);
      child.on("error", (e) => {
        clearTimeout(timer);
        res({ stdout, stderr: `${stderr}${e.message}`, code: -1 });
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        res({ stdout, stderr, code: code ?? -1 });
      });
      child.stdin.on("error", () => undefined); // kubectl may exit before reading
      child.stdin.end(opts.input ?? "");
    });
  }

  /** Stops all processes (SIGTERM, then SIGKILL) and removes the temp dir. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.controllerManager?.stop(5_000);
    await this.apiServer?.stop(10_000);
    await this.etcd?.stop(5_000);
    await rm(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}
