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
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status}: ${payload.error ?? 'no details'}`);
  return payload;
}
