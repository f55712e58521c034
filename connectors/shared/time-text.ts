/**
 * A time of day with exactly six fractional digits, as both sources print
 * times and timestamps (the servers trim trailing zeros, or print none):
 * `12:34:56` → `12:34:56.000000`, `-00:00:00.5` → `-00:00:00.500000`.
 * Without split(): it runs for every temporal value of every streamed row.
 */
export function withMicroseconds(time: string): string {
  const dot = time.indexOf('.');
  if (dot < 0) return `${time}.000000`;
  const digits = time.length - dot - 1;
  return digits >= 6 ? time : time + '000000'.slice(digits);
}
