// pino JSON logs; pretty, short lines when a person watches a terminal.

import { pino, type Logger as PinoLogger } from "pino";

export type Logger = PinoLogger;

export interface LogOptions {
  level?: string;
  /** Pretty output for a terminal; JSON otherwise. Defaults to whether stderr is a TTY. */
  pretty?: boolean;
}

export function createLogger(options: LogOptions = {}): Logger {
  const level = options.level ?? process.env["VIREO_LOG_LEVEL"] ?? "info";
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  if (pretty) {
    return pino({
      level,
      transport: { target: "pino-pretty", options: { destination: 2, colorize: true, translateTime: "HH:MM:ss", ignore: "pid,hostname,app,event,object" } },
    });
  }
  return pino({ level, base: { app: "vireo" } }, pino.destination(2));
}

/** A logger that drops everything: for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
