// File mode's status writer and event recorder: status goes to the state directory, events to the log.

import type { VireoObject } from "../../api/types.ts";
import { keyOf } from "../../api/types.ts";
import type { EventRecorder, EventType, StatusWriter } from "../../engine/context.ts";
import type { StateDirectory } from "../../state/state-dir.ts";
import type { Logger } from "../../observe/log.ts";

export class StateStatusWriter implements StatusWriter {
  private readonly state: StateDirectory;

  constructor(state: StateDirectory) {
    this.state = state;
  }

  async writeStatus(object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): Promise<void> {
    this.state.setStatus(keyOf(object), status);
  }
}

/**
 * Events as log lines: `reason` and the object as fields, the message as text. A VM's routine events
 * (Scheduled, Started, …) go at debug level, so a person watching a fleet come up sees the progress
 * summary rather than a line per VM; decisions such as failovers and warnings always show.
 */
/** What every VM does on its way up or down: shown as the progress summary instead, one line per VM at debug. */
const ROUTINE_VM_EVENTS = new Set(["Scheduled", "Started", "Stopping", "Stopped"]);

export class LogEventRecorder implements EventRecorder {
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  record(object: Readonly<VireoObject>, type: EventType, reason: string, message: string): void {
    const ref = `${object.kind}/${object.metadata.namespace ? object.metadata.namespace + "/" : ""}${object.metadata.name}`;
    const fields = { event: reason, object: ref };
    const text = `${ref}: ${message}`;
    if (type === "Warning") this.log.warn(fields, text);
    else if (object.kind === "VirtualMachine" && ROUTINE_VM_EVENTS.has(reason)) this.log.debug(fields, text);
    else this.log.info(fields, text);
  }
}
