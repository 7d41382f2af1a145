/** RFC 3339 with milliseconds, as stored in status: timings (RTO, DNS verification) need them. */
export const timestamp = (d: Date): string => d.toISOString();

/** A Kubernetes MicroTime (a Lease's renewTime): RFC 3339 with microseconds. */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
