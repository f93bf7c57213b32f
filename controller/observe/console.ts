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
import { serveConsole, serveObservability, type HealthChecks, type ObservabilityServer } from "./http.ts";

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
  /** Where the console is, "host:port": the metrics address, or --console-addr when given. */
  consoleAddress: string;
}

/**
 * Serves /metrics, /healthz and /readyz on `addresses.metrics` with the console beside them, or the
 * console on a server of its own when `addresses.console` is set. close() ends the live streams and both.
 */
export async function serveWithConsole(
  addresses: { metrics: string; console: string },
  metrics: { registry: Registry; health: HealthChecks },
  parts: ConsoleParts,
): Promise<ServedWithConsole> {
  const own = addresses.console !== "";
  const http = await serveObservability(addresses.metrics, metrics.registry, metrics.health, own ? undefined : parts.sources);
  const consoleHttp = own ? await serveConsole(addresses.console, parts.sources) : http;
  return {
    ...http,
    consoleAddress: consoleHttp.address,
    close: async () => {
      parts.close();
      if (consoleHttp !== http) await consoleHttp.close();
      await http.close();
    },
  };
}
