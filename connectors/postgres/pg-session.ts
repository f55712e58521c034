import { Client } from 'pg';

/** Session settings that fix the text forms types.ts parses. */
export const SESSION_OPTIONS = '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3';

/** Every value arrives as the text Postgres sent; type-catalog.ts decodes it losslessly. */
const rawText = { getTypeParser: () => (value: string) => value };

/** A plain connection whose values stay raw text, with the session settings above. */
export function rawTextClient(url: string): Client {
  const client = new Client({ connectionString: url, options: SESSION_OPTIONS, types: rawText, connectionTimeoutMillis: 10_000, keepAlive: true } as never);
  // A dropped connection also fails the query in flight, which reports it; without
  // a listener the 'error' event would crash the process.
  client.on('error', () => undefined);
  return client;
}

/**
 * Ends a connection politely, or by force after `timeoutMs`: a blackholed
 * network never answers the goodbye, and a stop must not hang on it.
 */
export async function endClient(client: Client, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const forced = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      resolve();
    }, timeoutMs);
  });
  await Promise.race([client.end().catch(() => undefined), forced]);
  clearTimeout(timer);
}
