/**
 * Operations whose promotion an adapter saw started or under way (a call returned `Pending`), so
 * that the call that finds it finished reports `alreadyPrimary: false`. Only that flag, which
 * goes into a message, depends on it: an operator restarted meanwhile reports "already primary",
 * which is what it found. Decisions never do: the provider's own state says what to do next.
 */
export class PromotionsUnderWay {
  /** Enough for every operation in flight; an abandoned one is forgotten oldest first. */
  private static readonly LIMIT = 64;
  private readonly ids = new Set<string>();

  start(operationId: string): void {
    this.ids.delete(operationId);
    this.ids.add(operationId);
    if (this.ids.size > PromotionsUnderWay.LIMIT) {
      const oldest = this.ids.values().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
  }

  /** Whether a call for this operation returned Pending before. */
  has(operationId: string): boolean {
    return this.ids.has(operationId);
  }

  finish(operationId: string): void {
    this.ids.delete(operationId);
  }
}
