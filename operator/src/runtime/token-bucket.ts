/**
 * A token bucket: `ratePerSecond` tokens a second, holding at most `burst`. Nothing waits on it: a
 * caller that finds no token leaves its work for a later pass (waiting is returning). Work that
 * must not wait spends anyway, into debt down to `-maxDebt`, so the work that can wait gives way.
 */
export class TokenBucket {
  private readonly ratePerSecond: number;
  private readonly burst: number;
  private readonly maxDebt: number;
  private readonly now: () => number;
  private tokens: number;
  private at: number;

  constructor(ratePerSecond: number, burst: number, now: () => number, maxDebt = 0) {
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.maxDebt = maxDebt;
    this.now = now;
    this.tokens = burst;
    this.at = now();
  }

  /** Whether a token is there now. */
  available(): boolean {
    this.refill();
    return this.tokens >= 1;
  }

  /** Spends a token, whether there is one or not (down to the debt limit). */
  spend(): void {
    this.refill();
    this.tokens = Math.max(-this.maxDebt, this.tokens - 1);
  }

  /** Spends a token if there is one. */
  take(): boolean {
    if (!this.available()) return false;
    this.tokens -= 1;
    return true;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, t - this.at) / 1000) * this.ratePerSecond);
    this.at = t;
  }
}
