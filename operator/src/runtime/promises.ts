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
