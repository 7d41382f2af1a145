/**
 * Command-line parsing for `kubectl failover`, in kubectl's manner: `--flag value`,
 * `--flag=value`, short forms (-n, -A, -o), flags before or after the positional arguments.
 */

/** A mistake in how the command was called; printed with the usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  /** Long name without dashes, e.g. "namespace". */
  name: string;
  short?: string;
  /** A boolean flag takes no value. */
  boolean?: boolean;
  /** Given more than once, every value is kept (flagValues). */
  repeatable?: boolean;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const args = [...argv];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    const long = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/s.exec(arg);
    const short = /^-([a-zA-Z])(?:=?(.+))?$/s.exec(arg);
    const spec = long ? byLong.get(long[1] as string) : short ? byShort.get(short[1] as string) : undefined;
    if (!long && !short) {
      positionals.push(arg);
      continue;
    }
    if (!spec) {
      throw new UsageError(
        `unknown flag ${arg}; flags here are: ${specs.map((s) => `--${s.name}${s.short ? ` (-${s.short})` : ''}`).join(', ')}`,
      );
    }
    const inline = long ? long[2] : short?.[2];
    if (spec.boolean && short && inline !== undefined && !arg.startsWith(`-${short[1]}=`)) {
      // Shorthands grouped, as kubectl (pflag) takes them: -Aw is -A -w, -Ao json is -A -o json.
      flags.set(spec.name, true);
      args.splice(i + 1, 0, `-${inline}`);
      continue;
    }
    if (spec.boolean) {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') {
        throw new UsageError(`--${spec.name} takes no value (or =true / =false), got ${inline}`);
      }
      if (inline !== 'false') flags.set(spec.name, true);
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith('-') && value.length > 1)) {
      throw new UsageError(`--${spec.name} needs a value`);
    }
    const before = flags.get(spec.name);
    flags.set(spec.name, spec.repeatable && typeof before === 'string' ? `${before}\0${value}` : value);
  }
  return { positionals, flags };
}

export const flagString = (args: ParsedArgs, name: string): string | undefined => {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
};

export const flagSet = (args: ParsedArgs, name: string): boolean => args.flags.get(name) === true;

/** Every value of a repeatable flag, in the order given. */
export const flagValues = (args: ParsedArgs, name: string): string[] => {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v.split('\0') : [];
};
