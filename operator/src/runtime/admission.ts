/**
 * At most `max` at a time per key, in order of asking: for work that costs the far side the more
 * the more of it runs at once (opening sessions to one database server), where letting everything
 * start together makes all of it slow, and all of it late.
 */
export class KeyedAdmission {
  private readonly max: number;
  private readonly keys = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`max must be a positive integer, got ${max}`);
    this.max = max;
  }

  /** Resolves when `key` has a free place, with the function that gives it back (once). */
  async enter(key: string): Promise<() => void> {
    let entry = this.keys.get(key);
    if (!entry) {
      entry = { running: 0, waiting: [] };
      this.keys.set(key, entry);
    }
    const held = entry;
    if (held.running < this.max) held.running++;
    // A place handed over by leave() is counted already.
    else await new Promise<void>((resolve) => held.waiting.push(resolve));
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = held.waiting.shift();
      if (next) next();
      else if (--held.running === 0) this.keys.delete(key);
    };
  }

  /** Places taken and waited for, per key (for tests and metrics). */
  load(key: string): { running: number; waiting: number } {
    const entry = this.keys.get(key);
    return { running: entry?.running ?? 0, waiting: entry?.waiting.length ?? 0 };
  }
}
