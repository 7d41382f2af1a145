/**
 * A strict pattern for standard five-field cron expressions (and @weekly-style macros), so a
 * schedule such as "99 * * * *" is refused by the API server, not discovered by the operator.
 */
const step = '(/([1-9][0-9]?))?';

function field(value: string): string {
  const item = `(\\*${step}|${value}(-${value})?${step})`;
  return `${item}(,${item})*`;
}

const names = (list: string[]) => list.flatMap((n) => [n, n.toLowerCase()]).join('|');
const minute = '([0-5]?[0-9])';
const hour = '([01]?[0-9]|2[0-3])';
const dayOfMonth = '([1-9]|[12][0-9]|3[01])';
const month = `([1-9]|1[0-2]|${names(['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'])})`;
const dayOfWeek = `([0-7]|${names(['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'])})`;

export const CRON_PATTERN = `^(@(yearly|annually|monthly|weekly|daily|hourly)|${[
  minute,
  hour,
  dayOfMonth,
  month,
  dayOfWeek,
]
  .map(field)
  .join(' ')})$`;
