import { LoadedConfig } from '../config/load';

/** Calls the running service's admin API (service.http in the config). */
export async function callAdmin(config: LoadedConfig, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const { host, port, token } = config.service.http;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`cannot reach the service at ${url} (${((error as Error).cause as Error | undefined)?.message ?? (error as Error).message}): is \`cdc run -c ${config.configFile}\` running?`);
  }
  const payload = (await response.json().catch(() => ({}))) as { error?: string };
  if (!response.ok) throw Object.assign(new Error(`${method} ${path}: ${response.status}: ${payload.error ?? 'no details'}`), { status: response.status });
  return payload;
}

const NOT_STREAMING_YET = /is not streaming yet/;

/**
 * callAdmin() for a request only a streaming source can take (a resync): while
 * the source is reconnecting or snapshotting (409 "not streaming yet") it asks
 * again every second, saying so once on stderr, for up to `waitMs`.
 */
export async function callAdminWhenStreaming(config: LoadedConfig, path: string, body: unknown, waitMs = 60_000): Promise<unknown> {
  const deadline = Date.now() + waitMs;
  for (let told = false; ; told = true) {
    try {
      return await callAdmin(config, 'POST', path, body);
    } catch (error) {
      const { status, message } = error as Error & { status?: number };
      if (status !== 409 || !NOT_STREAMING_YET.test(message) || Date.now() >= deadline) throw error;
      if (!told) process.stderr.write(`${message.replace(/^.*?: 409: /, '')}: waiting up to ${Math.round(waitMs / 1000)} s\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
