import type { Logger } from "../observe/log.ts";

/** Resolves on the first SIGTERM or SIGINT: the process then stops cleanly, with state saved. */
export function waitForSignal(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info(`${signal}: stopping`);
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      resolve();
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  });
}
