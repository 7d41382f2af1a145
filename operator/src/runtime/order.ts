/**
 * Orders strings by UTF-16 code units, as Go's sort and kubectl do. RFC 3339 timestamps and the
 * API's ASCII names and condition types sort right this way, without ICU's collator: in the
 * operator's process `localeCompare` would map ~2.6 MiB of collation data and cost more per call.
 */
export const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
