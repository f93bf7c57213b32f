// Requests to the API server over HTTPS with kept-alive connections, JSON in and out, and watches as
// streams of JSON lines. A refusal carries the server's status code, its Status body and its Retry-After,
// which the client honours as client-go does.

import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest, type IncomingMessage } from "node:http";
import type { ApiEndpoint } from "./kubeconfig.ts";

/** The API server refused a request (or answered with an error status). */
export class ApiError extends Error {
  readonly code: number;
  readonly body: string;
  /** Seconds the server asked to wait before trying again (Retry-After), if it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(request: string, answer: { code: number; body: string; retryAfterSeconds: number | undefined }) {
    super(`${request}: HTTP ${answer.code}`);
    this.name = "ApiError";
    this.code = answer.code;
    this.body = answer.body;
    this.retryAfterSeconds = answer.retryAfterSeconds;
  }
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
}

interface Opening {
  method: string;
  path: string;
  query?: Query | undefined;
  headers: Record<string, string | number>;
  payload?: Buffer | undefined;
  /** 0: none (a watch, whose informer keeps its own deadline). */
  timeoutMs: number;
}

export type WatchEvent = { type: string; object: Record<string, unknown> };

/** A request that hears nothing back for this long is failed: a half-open connection must not hang a reconcile. */
const REQUEST_TIMEOUT_MS = 60_000;

export class ApiTransport {
  readonly endpoint: ApiEndpoint;
  private readonly agent: Agent;
  private readonly secure: boolean;

  constructor(endpoint: ApiEndpoint) {
    this.endpoint = endpoint;
    this.secure = endpoint.server.startsWith("https:");
    // Kept-alive connections: a TLS handshake per request would be most of a busy controller's CPU.
    this.agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, scheduling: "lifo" });
  }

  /** Sends one request; resolves with the parsed JSON answer, or rejects with an ApiError or a network error. */
  async send<T>(spec: RequestSpec): Promise<T> {
    const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    const headers: Record<string, string | number> = { Accept: "application/json" };
    if (payload) Object.assign(headers, { "Content-Type": spec.contentType ?? "application/json", "Content-Length": payload.length });
    const response = await this.open({ ...spec, headers, payload, timeoutMs: REQUEST_TIMEOUT_MS });
    const text = await readAll(response);
    if (response.statusCode! >= 300) throw refusal(spec.method, spec.path, response, text);
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /**
   * Watches a collection: each event goes to `onEvent` as it arrives; `onEnd` is called once, with no
   * argument when the server closed the watch and with the error otherwise. The returned function aborts it.
   */
  async watch(path: string, query: Query, onEvent: (event: WatchEvent) => void, onEnd: (error?: unknown) => void): Promise<() => void> {
    const response = await this.open({ method: "GET", path, query: { ...query, watch: true }, headers: { Accept: "application/json" }, timeoutMs: 0 });
    if (response.statusCode !== 200) {
      const text = await readAll(response);
      throw refusal("GET", path, response, text);
    }
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      response.destroy();
      onEnd(error);
    };
    let pending = "";
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (ended) return;
        if (line.trim() === "") continue;
        try {
          onEvent(JSON.parse(line) as WatchEvent);
        } catch (error) {
          end(error);
        }
      }
    });
    response.on("end", () => end());
    response.on("error", (error) => end(error));
    response.on("close", () => end());
    return () => end();
  }

  close(): void {
    this.agent.destroy();
  }

  private async open({ method, path, query, headers, payload, timeoutMs }: Opening): Promise<IncomingMessage> {
    const url = new URL(this.endpoint.server + path);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const options: RequestOptions = { method, headers, ...(this.secure ? { agent: this.agent } : {}) };
    await this.endpoint.authenticate(options);
    return new Promise((resolve, reject) => {
      const req = (this.secure ? httpsRequest : httpRequest)(url, options, resolve);
      req.on("error", reject);
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`${method} ${path}: no answer within ${timeoutMs / 1000} s`), { code: "ETIMEDOUT" })));
      req.end(payload);
    });
  }
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", reject);
  });
}

function refusal(method: string, path: string, response: IncomingMessage, body: string): ApiError {
  return new ApiError(`${method} ${path}`, { code: response.statusCode!, body, retryAfterSeconds: retryAfter(response.headers["retry-after"]) });
}

/** Retry-After in seconds (RFC 9110: delay-seconds or an HTTP date). */
export function retryAfter(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}
