/** RFC 3339 with milliseconds, as stored in status: timings (RTO, DNS verification) need them. */
export const timestamp = (d: Date): string => d.toISOString();
