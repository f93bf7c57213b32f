// The console's HTTP side: the page and its scripts (console/ and three vendored ES modules, all served
// from this process: the page works with no network), the fleet snapshot, the live stream of changes and a
// VM's detail. Read-only: the HTTP server answers GET and HEAD only. Every response carries a
// Content-Security-Policy that allows scripts from this origin alone, so no inline script ever runs.

import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { gzip } from "node:zlib";
import { promisify } from "node:util";
import { objectKey, type VirtualMachine } from "../api/types.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { EventRing } from "./console-events.ts";
import type { FleetFeed } from "./console-feed.ts";
import { vmDetail } from "./console-views.ts";

const ROOT = join(import.meta.dirname, "..", "..");
export const CONSOLE_DIR = join(ROOT, "console");

/** The ES modules the page imports, from node_modules; hooks' bare "preact" import is pointed at ours. */
const VENDOR: Readonly<Record<string, string>> = {
  "preact.mjs": join(ROOT, "node_modules", "preact", "dist", "preact.mjs"),
  "hooks.mjs": join(ROOT, "node_modules", "preact", "hooks", "dist", "hooks.mjs"),
  "htm.mjs": join(ROOT, "node_modules", "htm", "dist", "htm.mjs"),
};

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

/** Scripts, styles and data from this origin only; nothing inline, no frames, no forms, no plug-ins. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers on every response of the server: the console's and /metrics' alike. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

export interface ConsoleSources {
  store: ObjectStore;
  events: EventRing;
  feed: FleetFeed;
}

const gzipAsync = promisify(gzip);
/** Below this a response goes as it is: compressing it saves less than it costs. */
const GZIP_MIN_BYTES = 8 * 1024;

/** Answers a console request; false when the path is not the console's (the caller answers 404). */
export function handleConsole(sources: ConsoleSources, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  return path.startsWith("/api/") ? handleApi(sources, req, res, path) : handleAsset(res, path);
}

function handleApi(sources: ConsoleSources, req: IncomingMessage, res: ServerResponse, path: string): boolean {
  if (path === "/api/fleet") return replyJson(req, res, sources.feed.snapshot());
  if (path === "/api/stream") {
    const query = new URL(req.url ?? "/", "http://console").searchParams;
    // A reconnecting EventSource says where it stopped in Last-Event-ID; a new one, in ?since=.
    const lastId = req.headers["last-event-id"];
    const since = Number(typeof lastId === "string" && lastId !== "" ? lastId : query.get("since") ?? Number.NaN);
    sources.feed.subscribe(res, { epoch: query.get("epoch") ?? "", since, gzip: acceptsGzip(req) });
    return true;
  }
  const vm = /^\/api\/vms\/([^/]+)\/([^/]+)$/.exec(path);
  if (!vm) return false;
  return replyVm(sources, req, res, { namespace: decodeURIComponent(vm[1]!), name: decodeURIComponent(vm[2]!) });
}

function handleAsset(res: ServerResponse, path: string): boolean {
  const file = path === "/" ? "index.html" : /^\/([a-z0-9-]+\.(?:html|js|css|svg))$/.exec(path)?.[1];
  if (file) return replyFile(res, join(CONSOLE_DIR, file), file, (text) => text);
  const vendor = /^\/vendor\/([a-z]+\.mjs)$/.exec(path)?.[1];
  if (vendor && VENDOR[vendor]) return replyFile(res, VENDOR[vendor], vendor, vendorModule);
  return false;
}

function replyVm(sources: ConsoleSources, req: IncomingMessage, res: ServerResponse, { namespace, name }: { namespace: string; name: string }): boolean {
  const key = objectKey("VirtualMachine", name, namespace);
  const vm = sources.store.get(key) as VirtualMachine | undefined;
  if (!vm) {
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: `no VirtualMachine ${namespace}/${name}` }));
    return true;
  }
  return replyJson(req, res, { vm: vmDetail(vm, sources.store.list("VirtualMachineMigration")), events: sources.events.about(key) });
}

function replyJson(req: IncomingMessage, res: ServerResponse, body: unknown): boolean {
  const text = JSON.stringify(body);
  const headers = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", vary: "accept-encoding" };
  const accepts = acceptsGzip(req);
  if (!accepts || text.length < GZIP_MIN_BYTES) {
    res.writeHead(200, headers);
    res.end(req.method === "HEAD" ? undefined : text);
    return true;
  }
  gzipAsync(text).then(
    (zipped) => {
      res.writeHead(200, { ...headers, "content-encoding": "gzip", "content-length": zipped.length });
      res.end(req.method === "HEAD" ? undefined : zipped);
    },
    (error: unknown) => fail(res, error),
  );
  return true;
}

/** Files are read once and kept: the console's few files and the vendored modules are small. */
const files = new Map<string, Promise<string>>();

function replyFile(res: ServerResponse, path: string, name: string, transform: (text: string) => string): boolean {
  let text = files.get(path);
  if (!text) {
    text = readFile(path, "utf8").then(transform);
    files.set(path, text);
    // A missing file is not cached: the next request looks again.
    text.catch(() => files.delete(path));
  }
  text.then(
    (body) => {
      res.writeHead(200, { "content-type": TYPES[name.split(".").pop()!] ?? "application/octet-stream", "cache-control": "no-cache" });
      res.end(res.req.method === "HEAD" ? undefined : body);
    },
    (error: unknown) => ((error as NodeJS.ErrnoException).code === "ENOENT" ? notFound(res, `${name} is missing from this installation`) : fail(res, error)),
  );
  return true;
}

/** A vendored module as the page imports it: the bare "preact" specifier made relative, no source map. */
export function vendorModule(text: string): string {
  return text.replace(/from\s*"preact"/g, 'from"./preact.mjs"').replace(/^\/\/# sourceMappingURL=.*$/m, "");
}

function notFound(res: ServerResponse, message: string): void {
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end(`${message}\n`);
}

function fail(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
  res.end(`${error instanceof Error ? error.message : String(error)}\n`);
}

/** Whether the browser takes a gzip-encoded response (every browser says so in Accept-Encoding). */
function acceptsGzip(req: IncomingMessage): boolean {
  return String(req.headers["accept-encoding"] ?? "").split(",").some((e) => e.trim().split(";")[0] === "gzip");
}
