// The console's parts as `vireo run` wires them, in file and API mode alike: a ring of recent events fed by
// the controller's event recorder, a feed of changes fed by the store and by the status writer (file mode
// records status in the store without waking its listeners), and the sources the HTTP side reads.

import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import type { EventRecorder, StatusWriter } from "../engine/context.ts";
import type { ObjectStore } from "../sources/store.ts";
import { EventRing, recordingInto } from "./console-events.ts";
import { FleetFeed } from "./console-feed.ts";
import type { ConsoleSources } from "./console-http.ts";
import type { Registry } from "prom-client";
import { parseListenAddress, serveConsole, serveObservability, type HealthChecks, type ObservabilityServer } from "./http.ts";

export interface ConsoleOptions {
  store: ObjectStore;
  /** The controller's clock. */
  now: () => number;
  mode: "file" | "api";
  /** Whether this replica stands by for the leader lease. */
  standby?: () => boolean;
}

export interface ConsoleParts {
  sources: ConsoleSources;
  /** The recorder to give the controller: passes events on to `inner` and keeps them for the console. */
  events(inner: EventRecorder): EventRecorder;
  /** The status writer to give the controller: writes through `inner`, then tells the console. */
  statusWriter(inner: StatusWriter): StatusWriter;
  close(): void;
}

/** Create before the sources start, so every object the store receives reaches the console's feed. */
export function createConsole(options: ConsoleOptions): ConsoleParts {
  const events = new EventRing();
  const feed = new FleetFeed({ store: options.store, events, now: options.now, mode: options.mode, ...(options.standby ? { standby: options.standby } : {}) });
  return {
    sources: { store: options.store, events, feed },
    events: (inner) => recordingInto(events, inner, options.now),
    statusWriter: (inner) => ({
      async writeStatus(object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): Promise<void> {
        await inner.writeStatus(object, status);
        // The store takes the status right after this resolves; the feed reads it when its batch goes out.
        feed.touched(keyOf(object as VireoObject));
      },
    }),
    close: () => feed.close(),
  };
}

export interface ServedWithConsole extends ObservabilityServer {
  /** Where the console is, "host:port"; undefined when it is not served (see serveWithConsole). */
  consoleAddress: string | undefined;
}

/**
 * Serves /metrics, /healthz and /readyz on `addresses.metrics`, and the console: on `addresses.console`
 * when given (beside /metrics when it is the same address), else beside /metrics when that address is
 * loopback (the default), else not at all. The console shows every VM's names, labels and events, so
 * serving it beyond the machine takes an explicit address. close() ends the live streams and the servers.
 */
export async function serveWithConsole(
  addresses: { metrics: string; console: string },
  metrics: { registry: Registry; health: HealthChecks },
  parts: ConsoleParts,
): Promise<ServedWithConsole> {
  const beside = addresses.console === "" ? isLoopback(addresses.metrics) : sameAddress(addresses.console, addresses.metrics);
  const own = addresses.console !== "" && !beside;
  const http = await serveObservability(addresses.metrics, metrics.registry, metrics.health, beside ? parts.sources : undefined);
  const consoleHttp = own ? await serveConsole(addresses.console, parts.sources) : undefined;
  return {
    ...http,
    consoleAddress: beside ? http.address : consoleHttp?.address,
    close: async () => {
      parts.close();
      await consoleHttp?.close();
      await http.close();
    },
  };
}

/** Whether a listen address ("host:port") takes connections from this machine only. */
export function isLoopback(address: string): boolean {
  const { host } = parseListenAddress(address);
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Two listen addresses that name the same port (port 0 asks for a new one each time). */
function sameAddress(a: string, b: string): boolean {
  const [x, y] = [parseListenAddress(a), parseListenAddress(b)];
  return x.port !== 0 && x.port === y.port && x.host === y.host;
}

/** The log's words for where the console is. */
export function consoleWhere(served: ServedWithConsole): string {
  return served.consoleAddress ? `console on http://${served.consoleAddress}/` : "console off (--metrics-addr is not loopback; --console-addr serves it)";
}
