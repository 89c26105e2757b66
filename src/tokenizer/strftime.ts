/**
 * Python's `datetime.strftime` in the C locale, for chat templates' `strftime_now` (Llama 3.1+ prints
 * "Today Date: 26 Jul 2024"). English names are fixed rather than taken from Intl so a prompt does not
 * change with the server's locale. Local time, like Python's `datetime.now()`.
 */
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
];

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

function dayOfYear(date: Date): number {
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const utcDays = (d: Date): number => Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86_400_000;
  return utcDays(date) - utcDays(startOfYear) + 1;
}

const DIRECTIVES: Readonly<Record<string, (date: Date) => string>> = {
  a: (d) => WEEKDAYS[d.getDay()]!.slice(0, 3),
  A: (d) => WEEKDAYS[d.getDay()]!,
  b: (d) => MONTHS[d.getMonth()]!.slice(0, 3),
  h: (d) => MONTHS[d.getMonth()]!.slice(0, 3),
  B: (d) => MONTHS[d.getMonth()]!,
  d: (d) => pad(d.getDate()),
  e: (d) => String(d.getDate()).padStart(2, ' '),
  m: (d) => pad(d.getMonth() + 1),
  y: (d) => pad(d.getFullYear() % 100),
  Y: (d) => String(d.getFullYear()),
  H: (d) => pad(d.getHours()),
  I: (d) => pad(d.getHours() % 12 === 0 ? 12 : d.getHours() % 12),
  p: (d) => (d.getHours() < 12 ? 'AM' : 'PM'),
  M: (d) => pad(d.getMinutes()),
  S: (d) => pad(d.getSeconds()),
  j: (d) => pad(dayOfYear(d), 3),
  w: (d) => String(d.getDay()),
  F: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
  T: (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
  '%': () => '%',
};

/** Formats `date` like Python's strftime; unknown directives are left as written (as glibc does). */
export function strftime(date: Date, format: string): string {
  return format.replace(/%(.)/gs, (directive: string, code: string) => DIRECTIVES[code]?.(date) ?? directive);
}
