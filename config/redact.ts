/**
 * One place that decides what a secret looks like, so config errors, logs and
 * `status` never print a password, token or key.
 *  - a value under a key named like a secret (password, token, apiKey, secret, key, ...) is shown as `***`;
 *  - a URL's password is shown as `***` (`postgres://app:***@db/shop`), in a value or anywhere in a text;
 *  - a value the config read from a secret file (`${file:...}`) or under a secret key is masked wherever it appears.
 */

export const MASK = '***';

const SECRET_KEY = /^(password|passwd|pass|token|apikey|api_key|secret|key|privatekey|private_key|credentials?)$|(password|token|secret|apikey)$/i;

/** scheme://user:password@ — the password part (up to the last `@` before the host). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'`]*:)([^\s@/"'`]*)(@)/gi;

/** password=... in a URL query or a libpq key/value connection string. */
const PARAM_PASSWORD = /\b((?:ssl)?password|passwd|token|apikey|api_key|secret)=([^\s&;"']+)/gi;

const knownSecrets = new Set<string>();

/** Remembers a secret value (from a secret file or a secret key), so `redactText` masks it wherever it shows. */
export function rememberSecret(value: unknown): void {
  if (typeof value === 'string' && value.length >= 4) knownSecrets.add(value);
}

export function isSecretKey(key: PropertyKey): boolean {
  return typeof key === 'string' && SECRET_KEY.test(key);
}

/** A text with URL passwords, password parameters and remembered secrets replaced by `***`. */
export function redactText(text: string): string {
  let out = text.replace(URL_PASSWORD, (_, head: string, _password: string, at: string) => `${head}${MASK}${at}`).replace(PARAM_PASSWORD, (_, name: string) => `${name}=${MASK}`);
  for (const secret of knownSecrets) if (out.includes(secret)) out = out.split(secret).join(MASK);
  return out;
}

/**
 * A copy of `value` safe to show: strings under secret keys become `***`,
 * other strings lose URL passwords and remembered secrets; objects and lists are walked.
 */
export function redact<T>(value: T, key?: PropertyKey): T {
  if (key !== undefined && isSecretKey(key) && value !== null && value !== undefined && typeof value !== 'object') return MASK as T;
  if (typeof value === 'string') return redactText(value) as T;
  if (Array.isArray(value)) return value.map((item) => redact(item)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)])) as T;
  }
  return value;
}
