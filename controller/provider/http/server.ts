// `vireo hostsim`'s HTTP server: the simulated hosts over HTTP/1.1 and JSON, behind a bearer token.
// Every route is in routes.ts; this file is the plumbing: authentication, bodies, errors, logging, and
// a clean close that answers the long-polls still waiting.

import { createHash, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isIP } from "node:net";
import type { Logger } from "../../observe/log.ts";
import { parseListenAddress } from "../../observe/http.ts";
import { ProviderError } from "../provider.ts";
import type { SimulatedHosts } from "../sim/index.ts";
import type { HostsimMetrics } from "./metrics.ts";
import { hostsimRoutes } from "./routes.ts";
import { matchRoute, routePath } from "./router.ts";
import type { Reply, Route } from "./router.ts";
import { MAX_BODY_BYTES, PROVIDER_ERROR_STATUS, TIME_HEADER, TIME_SCALE_HEADER, WireError } from "./wire.ts";
import type { ErrorBody } from "./wire.ts";

export interface HostsimServerOptions {
  sim: SimulatedHosts;
  /** The time scale of the simulator's clock, reported by `GET /v1/clock`. */
  timeScale: number;
  /** The bearer token every API request must carry; undefined only with `insecureNoAuth`. */
  token: string | undefined;
  /** Serve without authentication; allowed on loopback addresses only. */
  insecureNoAuth?: boolean;
  log: Logger;
  /** Counts every request by route and status; none when hostsim serves no /metrics. */
  metrics?: HostsimMetrics;
}

/** The server cannot start as configured. */
export class HostsimConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostsimConfigError";
  }
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

export class HostsimServer {
  readonly server: Server;
  private readonly options: HostsimServerOptions;
  private readonly routes: Route[];
  private readonly tokenDigest: Buffer | undefined;
  /** Aborted on close, so waiting long-polls answer at once instead of holding the close up. */
  private readonly closing = new AbortController();
  private boundAddress = "";

  constructor(options: HostsimServerOptions) {
    if (options.token === undefined && !options.insecureNoAuth) throw new HostsimConfigError("a token is required (or insecureNoAuth, on loopback only)");
    if (options.token !== undefined && options.token.length === 0) throw new HostsimConfigError("the token is empty");
    this.options = options;
    this.routes = hostsimRoutes({ sim: options.sim, timeScale: options.timeScale });
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
    this.server = createServer((req, res) => this.serve(req, res));
  }

  /** Listens on `host:port` (port 0 picks a free one) and returns the address bound, "host:port". */
  async listen(address: string): Promise<string> {
    const { host, port } = parseListenAddress(address);
    if (this.tokenDigest === undefined && !isLoopback(host)) {
      throw new HostsimConfigError(`refusing to serve without authentication on ${host}: --insecure-no-auth is for loopback addresses only`);
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => { this.server.off("error", reject); resolve(); });
    });
    const bound = this.server.address() as AddressInfo;
    this.boundAddress = bound.family === "IPv6" ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
    return this.boundAddress;
  }

  get address(): string {
    return this.boundAddress;
  }

  /** Stops accepting connections, answers waiting long-polls, and resolves once every response is sent. */
  async close(): Promise<void> {
    this.closing.abort();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    res.on("finish", () => {
      const seconds = (performance.now() - started) / 1000;
      this.options.metrics?.observeRequest({ method: req.method, route: this.routeOf(req.url), status: res.statusCode, seconds });
      this.options.log.debug({ method: req.method, url: req.url, status: res.statusCode, ms: Math.round(seconds * 1000) }, "hostsim request");
    });
    this.answer(req, res).catch((error: unknown) => {
      // Only a failure to write the response itself lands here; the client is most likely gone.
      this.options.log.warn({ err: error, method: req.method, url: req.url }, "hostsim could not answer a request");
      res.destroy();
    });
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!URL.canParse(req.url ?? "/", "http://hostsim")) return sendText(res, 400, "malformed request target\n");
    const url = new URL(req.url ?? "/", "http://hostsim");
    if (url.pathname === "/healthz" || url.pathname === "/livez") return sendText(res, 200, "ok\n");
    if (url.pathname === "/readyz") return this.closing.signal.aborted ? sendText(res, 503, "closing\n") : sendText(res, 200, "ok\n");
    if (!this.authorized(req)) {
      res.setHeader("www-authenticate", 'Bearer realm="vireo-hostsim"');
      return this.send(res, { status: 401, body: { code: "Unauthorized", message: "a valid bearer token is required (Authorization: Bearer <token>)" } satisfies ErrorBody });
    }
    let reply: Reply;
    try {
      reply = await this.dispatch(req, res, url);
    } catch (error) {
      reply = this.errorReply(error, req);
    }
    this.send(res, reply);
  }

  /** The route pattern a request target names, for metrics: a bounded set, never the raw path. */
  private routeOf(target: string | undefined): string {
    if (!URL.canParse(target ?? "/", "http://hostsim")) return "unmatched";
    const { pathname } = new URL(target ?? "/", "http://hostsim");
    return UNAUTHENTICATED_PATHS.has(pathname) ? pathname : routePath(this.routes, pathname);
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.tokenDigest === undefined) return true;
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!match) return false;
    // Comparing fixed-length digests in constant time leaks neither the token nor its length.
    return timingSafeEqual(digest(match[1]!.trim()), this.tokenDigest);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, url: URL): Promise<Reply> {
    const { route, params } = matchRoute(this.routes, req.method, url.pathname);
    const body = route.takesBody ? await readJsonBody(req) : undefined;
    // The response closes before it is sent only when the client went away.
    const gone = new AbortController();
    const onClose = () => gone.abort();
    res.once("close", onClose);
    try {
      return await route.handle({ params, query: url.searchParams, body, signal: AbortSignal.any([gone.signal, this.closing.signal]) });
    } finally {
      res.off("close", onClose);
    }
  }

  private errorReply(error: unknown, req: IncomingMessage): Reply {
    if (error instanceof ProviderError) return { status: PROVIDER_ERROR_STATUS[error.code], body: { code: error.code, message: error.message } };
    if (error instanceof WireError) return { status: error.status, body: { code: error.code, message: error.message }, headers: error.headers };
    this.options.log.error({ err: error, method: req.method, url: req.url }, "hostsim failed on a request");
    return { status: 500, body: { code: "Internal", message: `internal error: ${(error as Error).message ?? String(error)}` } };
  }

  private send(res: ServerResponse, reply: Reply): void {
    const sim = this.options.sim;
    res.setHeader(TIME_HEADER, String(sim.clock.now()));
    res.setHeader(TIME_SCALE_HEADER, String(this.options.timeScale));
    for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
    // The rest of an oversized body is not worth reading; a closing server keeps no connection open.
    if (reply.status === 413 || this.closing.signal.aborted) res.setHeader("connection", "close");
    if (reply.body === undefined) {
      res.writeHead(reply.status);
      res.end();
      return;
    }
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }
}

/** The paths answered without the token, each its own route in the metrics. */
const UNAUTHENTICATED_PATHS: ReadonlySet<string> = new Set(["/healthz", "/livez", "/readyz"]);

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The request's JSON body, refused with 413 past MAX_BODY_BYTES and with 400 when it is not JSON. */
async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const text = (await readBody(req)).toString("utf8");
  if (text.trim().length === 0) throw new WireError(400, "BadRequest", "the request needs a JSON body");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new WireError(400, "BadRequest", `the body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Reads the body, or rejects once it passes the limit. The rest of an oversized body is read and
 * dropped rather than the socket destroyed, so the client gets to see the 413.
 */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      if (size > MAX_BODY_BYTES) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

function tooLarge(): WireError {
  return new WireError(413, "PayloadTooLarge", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "content-type": "text/plain" });
  res.end(text);
}
