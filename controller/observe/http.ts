// /metrics, /healthz and /readyz, as every Kubernetes controller serves them.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

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

export async function serveObservability(addr: string, registry: Registry, health: HealthChecks): Promise<ObservabilityServer> {
  const { host, port } = parseListenAddress(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") {
      registry.metrics().then(
        (body) => { res.writeHead(200, { "content-type": registry.contentType }); res.end(body); },
        (error: unknown) => { res.writeHead(500); res.end(String(error)); },
      );
      return;
    }
    if (path === "/healthz" || path === "/livez") return reply(res, health.live());
    if (path === "/readyz") return reply(res, health.ready());
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

function reply(res: import("node:http").ServerResponse, ok: boolean): void {
  res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
  res.end(ok ? "ok\n" : "not ready\n");
}
