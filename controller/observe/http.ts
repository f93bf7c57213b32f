// /metrics, /healthz and /readyz, as every Kubernetes controller serves them, and the read-only console
// at / (console-http.ts) beside them or on an address of its own. Only GET and HEAD are answered.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { SECURITY_HEADERS, handleConsole, type ConsoleSources } from "./console-http.ts";

export interface HealthChecks {
  /** Live: the process is not wedged. */
  live(): boolean;
  /** Ready: the first sync is done and the controller can act (or stands by as a healthy replica). */
  ready(): boolean;
}

export interface ObservabilityServer {
  server: Server;
  /** The address actually bound, "host:port". */
  address: string;
  close(): Promise<void>;
}

export function parseListenAddress(addr: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!match) throw new Error(`invalid listen address "${addr}": expected host:port, e.g. 127.0.0.1:8080`);
  const host = match[1] ?? (match[2] || "0.0.0.0");
  return { host, port: Number(match[3]) };
}

/** Serves /metrics, /healthz and /readyz, and the console at / when given its sources. */
export async function serveObservability(addr: string, registry: Registry, health: HealthChecks, console?: ConsoleSources): Promise<ObservabilityServer> {
  return listen(addr, (req, res, path) => {
    if (path === "/metrics") {
      registry.metrics().then(
        (body) => { res.writeHead(200, { "content-type": registry.contentType }); res.end(body); },
        (error: unknown) => { res.writeHead(500); res.end(String(error)); },
      );
      return true;
    }
    if (path === "/healthz" || path === "/livez") return reply(res, health.live());
    if (path === "/readyz") return reply(res, health.ready());
    return console ? handleConsole(console, req, res, path) : false;
  });
}

/** Serves the console alone, on an address of its own (--console-addr). */
export function serveConsole(addr: string, console: ConsoleSources): Promise<ObservabilityServer> {
  return listen(addr, (req, res, path) => handleConsole(console, req, res, path));
}

/** A route answers (true) or leaves the request to the next (false: 404). */
type Routes = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

async function listen(addr: string, routes: Routes): Promise<ObservabilityServer> {
  const { host, port } = parseListenAddress(addr);
  const server = createServer((req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    // Read-only: nothing here changes anything, so nothing but GET (and HEAD) is accepted.
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      res.end("method not allowed: this server is read-only\n");
      return;
    }
    const path = (req.url ?? "/").split("?")[0]!;
    if (routes(req, res, path)) return;
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => { server.off("error", reject); resolve(); });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === "IPv6" ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return {
    server,
    address: shown,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function reply(res: ServerResponse, ok: boolean): boolean {
  res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
  res.end(ok ? "ok\n" : "not ready\n");
  return true;
}
