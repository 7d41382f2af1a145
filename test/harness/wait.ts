/**
 * Waits on a condition rather than on time: tests and the harness poll until the world is as
 * expected, with a generous deadline, so they do not depend on the machine's speed.
 */
export interface WaitOptions {
  /** What is being waited for, in words; it appears in the timeout message (a function is read then). */
  description: string | (() => string);
  timeoutMs?: number;
  intervalMs?: number;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { description, timeoutMs = 60_000, intervalMs = 200 }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const what = typeof description === 'function' ? description() : description;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
