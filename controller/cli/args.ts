// A small, strict command-line parser: --flag value, --flag=value, boolean --flags, positionals.
// Unknown flags are errors, as in kubectl.

export interface FlagSpec {
  [name: string]: { type: "string" | "boolean"; default?: string | boolean; help: string; short?: string };
}

export interface ParsedArgs {
  flags: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function parseArgs(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  const flags: Record<string, string | boolean | undefined> = {};
  for (const [name, s] of Object.entries(spec)) flags[name] = s.default;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const [rawName, inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2) as [string, string | undefined];
    const short = Object.entries(spec).find(([, s]) => s.short === rawName)?.[0];
    const name = short ?? (rawName.startsWith("no-") && spec[rawName.slice(3)]?.type === "boolean" ? rawName.slice(3) : rawName);
    const flag = spec[name];
    if (!flag) throw new UsageError(`unknown flag: ${arg}`);
    if (flag.type === "boolean") {
      flags[name] = name !== rawName ? false : inline === undefined ? true : inline !== "false";
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`flag needs a value: --${name}`);
    flags[name] = value;
  }
  return { flags, positionals };
}

export function usage(spec: FlagSpec): string {
  return Object.entries(spec)
    .map(([name, s]) => `  ${s.short ? `-${s.short}, ` : ""}--${name}${s.type === "string" ? " VALUE" : ""}`.padEnd(30) + s.help + (s.default !== undefined && s.default !== false ? ` (default ${s.default})` : ""))
    .join("\n");
}
