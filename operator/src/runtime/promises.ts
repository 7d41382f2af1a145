/**
 * Promise.all whose failure is the first in the list's order, not the first to arrive: the same
 * fault then gives the same message every time. (Two reads failing for one cause, say missing
 * credentials, used to alternate their messages, and each change of a condition's message is a
 * status write: one per reconcile for as long as the fault lasted.) It waits for an earlier item
 * only until that one settles, within its own timeout.
 */
export async function allInOrder<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  // Every rejection is handled: a later one is reported only if none before it failed.
  for (const p of promises) p.catch(() => undefined);
  const results: unknown[] = [];
  for (const p of promises) results.push(await p);
  return results as unknown as T;
}

/** A timer this late fired after the process itself stood still (GC, a long task, a paused VM). */
const STALL_MS = 100;
/** A timer this close to its time found the event loop free: what had arrived was read already. */
const PROMPT_MS = 5;

/**
 * `work`'s result, or undefined when it has not settled within `ms`; a rejection within it is
 * thrown. A deadline judges the far side, so this process's own stalls are not held against it:
 * a timer that fires late by a stall waits once more for as long (at most `ms`), and the verdict
 * "no answer" waits for the I/O already received to be read first (setImmediate runs after the
 * poll phase; a timer runs before it). Otherwise an answer that arrived while the event loop was
 * busy reads as a timeout, and a loaded operator sees healthy databases flap.
 */
export function settledWithin<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let immediate: ReturnType<typeof setImmediate> | undefined;
    const end = () => {
      done = true;
      clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    };
    const arm = (delay: number, extended: boolean) => {
      const due = performance.now() + delay;
      timer = setTimeout(() => {
        const stalled = performance.now() - due;
        if (!extended && stalled > STALL_MS) return arm(Math.min(stalled, ms), true);
        if (stalled < PROMPT_MS) {
          end();
          return resolve(undefined);
        }
        immediate = setImmediate(() => {
          if (done) return;
          end();
          resolve(undefined);
        });
      }, delay);
      timer.unref();
    };
    arm(ms, false);
    work.then(
      (value) => {
        if (done) return;
        end();
        resolve(value);
      },
      (err: unknown) => {
        if (done) return;
        end();
        reject(err);
      },
    );
  });
}
