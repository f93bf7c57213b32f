// Where the API server is and who Vireo is to it, read the way kubectl reads it: --kubeconfig, else the
// files in KUBECONFIG (merged, the first to name a cluster, user or context wins), else ~/.kube/config,
// else the pod's service account. Tokens, client certificates and basic auth are read here; a user that
// needs a credential plugin (exec, auth-provider) is handed to @kubernetes/client-node, loaded only then:
// its generated API models cost a controller about 80 MB it otherwise has no use for.

import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import type { RequestOptions } from "node:https";
import { load } from "js-yaml";

export interface ApiEndpoint {
  /** The server's base URL, without a trailing slash. */
  server: string;
  /** What to say before each request: TLS material and headers (a token that rotates is re-read). */
  authenticate(options: RequestOptions): Promise<void>;
}

interface NamedCluster { name: string; cluster: Record<string, unknown> }
interface NamedUser { name: string; user: Record<string, unknown> }
interface NamedContext { name: string; context: { cluster?: string; user?: string } }
interface KubeconfigFile {
  clusters?: NamedCluster[];
  users?: NamedUser[];
  contexts?: NamedContext[];
  "current-context"?: string;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";
/** A projected service account token rotates; client-go re-reads it about once a minute. */
const TOKEN_REREAD_MS = 60_000;

export function loadEndpoint(path?: string): ApiEndpoint {
  const files = path ? [path] : (process.env["KUBECONFIG"] ?? "").split(delimiter).filter((f) => f !== "");
  if (files.length === 0) {
    const home = join(homedir(), ".kube", "config");
    if (existsSync(home)) files.push(home);
  }
  if (files.length === 0) {
    if (process.env["KUBERNETES_SERVICE_HOST"]) return inCluster();
    throw new Error("no kubeconfig: set --kubeconfig or KUBECONFIG, or run in a cluster");
  }
  return fromFiles(files, path !== undefined);
}

interface Merged {
  clusters: Map<string, Record<string, unknown>>;
  users: Map<string, Record<string, unknown>>;
  contexts: Map<string, NamedContext["context"]>;
  current: string;
  /** The directory of the file each cluster or user came from: relative paths in it are relative to it. */
  dirs: Map<Record<string, unknown>, string>;
}

function merge(files: readonly string[]): Merged {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map(), current: "", dirs: new Map() };
  const keepFirst = <T extends object>(into: Map<string, T>, name: string, value: T, dir: string) => {
    if (into.has(name)) return;
    into.set(name, value);
    merged.dirs.set(value as Record<string, unknown>, dir);
  };
  for (const file of files) {
    const doc = (load(readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
    for (const c of doc.clusters ?? []) keepFirst(merged.clusters, c.name, c.cluster, dirname(file));
    for (const u of doc.users ?? []) keepFirst(merged.users, u.name, u.user ?? {}, dirname(file));
    for (const c of doc.contexts ?? []) keepFirst(merged.contexts, c.name, c.context, dirname(file));
    merged.current ||= doc["current-context"] ?? "";
  }
  return merged;
}

function fromFiles(files: readonly string[], named: boolean): ApiEndpoint {
  const merged = merge(files);
  const context = merged.contexts.get(merged.current);
  const cluster = context?.cluster !== undefined ? merged.clusters.get(context.cluster) : undefined;
  if (!context || !cluster) throw new Error(named ? `kubeconfig ${files[0]} has no current cluster` : "the kubeconfig has no current cluster");
  const user = (context.user !== undefined ? merged.users.get(context.user) : undefined) ?? {};
  const server = String(cluster["server"]);
  if (user["exec"] !== undefined || user["auth-provider"] !== undefined) return viaCredentialPlugin(files, server);
  const material = (owner: Record<string, unknown>, key: string) => fileOrData(owner, key, merged.dirs.get(owner) ?? ".");
  const tls: Tls = {
    ca: material(cluster, "certificate-authority"),
    cert: material(user, "client-certificate"),
    key: material(user, "client-key"),
    rejectUnauthorized: cluster["insecure-skip-tls-verify"] !== true,
    servername: typeof cluster["tls-server-name"] === "string" ? cluster["tls-server-name"] : undefined,
  };
  return endpoint(server, tls, bearerOrBasic(user, typeof user["tokenFile"] === "string" ? user["tokenFile"] : undefined));
}

/** `key-data` (base64) or the file `key` names, relative to the kubeconfig's directory. */
function fileOrData(owner: Record<string, unknown>, key: string, dir: string): Buffer | undefined {
  const data = owner[`${key}-data`];
  if (typeof data === "string") return Buffer.from(data, "base64");
  const at = owner[key];
  if (typeof at !== "string") return undefined;
  return readFileSync(isAbsolute(at) ? at : join(dir, at));
}

function inCluster(): ApiEndpoint {
  const host = process.env["KUBERNETES_SERVICE_HOST"]!;
  const port = process.env["KUBERNETES_SERVICE_PORT"] ?? "443";
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const tls: Tls = { ca: readFileSync(join(SERVICE_ACCOUNT, "ca.crt")), cert: undefined, key: undefined, rejectUnauthorized: true, servername: undefined };
  return endpoint(server, tls, bearerOrBasic({}, join(SERVICE_ACCOUNT, "token")));
}

type Tls = { ca: Buffer | undefined; cert: Buffer | undefined; key: Buffer | undefined; rejectUnauthorized: boolean; servername: string | undefined };

function endpoint(server: string, tls: Tls, authorization: () => string | undefined): ApiEndpoint {
  return {
    server: server.replace(/\/+$/, ""),
    authenticate(options) {
      if (tls.ca) options.ca = tls.ca;
      if (tls.cert) options.cert = tls.cert;
      if (tls.key) options.key = tls.key;
      if (tls.servername) options.servername = tls.servername;
      options.rejectUnauthorized = tls.rejectUnauthorized;
      const value = authorization();
      if (value) options.headers = { ...(options.headers as Record<string, string>), Authorization: value };
      return Promise.resolve();
    },
  };
}

/** The Authorization header: a token (from a file, re-read as it rotates), else basic auth, else none. */
function bearerOrBasic(user: Record<string, unknown>, tokenFile: string | undefined): () => string | undefined {
  if (typeof user["token"] === "string") {
    const header = `Bearer ${user["token"]}`;
    return () => header;
  }
  if (tokenFile !== undefined) {
    let cached: { token: string; readAt: number; mtimeMs: number } | undefined;
    return () => {
      const now = Date.now();
      if (!cached || now - cached.readAt > TOKEN_REREAD_MS) {
        const mtimeMs = statSync(tokenFile).mtimeMs;
        cached = { token: mtimeMs === cached?.mtimeMs ? cached.token : readFileSync(tokenFile, "utf8").trim(), readAt: now, mtimeMs };
      }
      return `Bearer ${cached.token}`;
    };
  }
  if (typeof user["username"] === "string") {
    const password = typeof user["password"] === "string" ? user["password"] : "";
    const header = `Basic ${Buffer.from(`${user["username"]}:${password}`).toString("base64")}`;
    return () => header;
  }
  return () => undefined;
}

/** A user whose credential comes from a plugin: @kubernetes/client-node runs the plugin and caches what it gives. */
function viaCredentialPlugin(files: readonly string[], server: string): ApiEndpoint {
  const config = import("@kubernetes/client-node").then(({ KubeConfig }) => {
    const kc = new KubeConfig();
    kc.loadFromFile(files[0]!);
    for (const file of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(file);
      kc.mergeConfig(more);
    }
    return kc;
  });
  return {
    server: server.replace(/\/+$/, ""),
    async authenticate(options) {
      await (await config).applyToHTTPSOptions(options);
    },
  };
}
