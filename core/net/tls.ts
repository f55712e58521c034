import * as fs from 'node:fs';

/**
 * TLS helpers shared by every client: PEM material from config, and errors
 * that say which server presented which certificate and which CA file did not
 * vouch for it, instead of Node's bare "self-signed certificate in chain".
 */

/** PEM text given inline, or read from the file it names; the error names the config key and the file. */
export function readPem(value: string, what: string): string {
  if (value.trimStart().startsWith('-----BEGIN')) return value;
  try {
    return fs.readFileSync(value, 'utf8');
  } catch (error) {
    throw new Error(`${what}: cannot read ${value} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); give the path of a PEM file or the PEM text itself`);
  }
}

/** A file path when `value` names one (for messages); undefined for inline PEM. */
export function pemSource(value: string | undefined): string | undefined {
  return value === undefined || value.trimStart().startsWith('-----BEGIN') ? undefined : value;
}

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const FINGERPRINT = 'CA_FINGERPRINT_MISMATCH';
const WRONG_NAME = 'ERR_TLS_CERT_ALTNAME_INVALID';
/** Clients that keep only the text of Node's error (the Elasticsearch transport): the code from the message. */
const MESSAGES: Array<[RegExp, string]> = [
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get local issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/does not match certificate's altnames|is not in the cert's altnames/i, WRONG_NAME],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/fingerprint/i, 'CA_FINGERPRINT_MISMATCH'],
];

export interface TlsPeer {
  /** What connects, e.g. "source shop-pg" or "redis sink cache". */
  who: string;
  host: string;
  port?: number | string;
  /** The CA file the client trusts; undefined: the system's CAs. */
  caFile?: string;
  /** The config key that sets the CA, for the hint. */
  caSetting: string;
}

/** The certificate verification error in `error` or its causes, if any. */
export function tlsFailure(error: unknown): { code: string; message: string } | undefined {
  for (let e = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown[] } | undefined, depth = 0; e && depth < 6; depth++) {
    if (typeof e.code === 'string' && (UNTRUSTED.has(e.code) || EXPIRED.has(e.code) || e.code === WRONG_NAME)) {
      return { code: e.code, message: String(e.message ?? e.code) };
    }
    const byText = typeof e.message === 'string' ? MESSAGES.find(([pattern]) => pattern.test(e!.message as string)) : undefined;
    if (byText) return { code: byText[1], message: String(e.message) };
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as typeof e;
  }
  return undefined;
}

/**
 * A clear error for a failed certificate check, naming the server and the CA
 * file; undefined when `error` is not one (the caller rethrows it unchanged).
 */
export function describeTlsFailure(error: unknown, peer: TlsPeer): Error | undefined {
  const failure = tlsFailure(error);
  if (!failure) return undefined;
  const where = `${peer.host}${peer.port !== undefined ? `:${peer.port}` : ''}`;
  const ca = peer.caFile ? `the CA file ${peer.caFile}` : `the system's trusted CAs (no ${peer.caSetting} given)`;
  const detail = `${failure.code}: ${failure.message}`;
  let text: string;
  if (failure.code === FINGERPRINT) {
    text = `${peer.who}: no certificate in the TLS chain of ${where} has the configured CA fingerprint (${failure.message}); check caFingerprint against the CA's SHA-256 fingerprint (openssl x509 -noout -fingerprint -sha256 -in ca.crt)`;
  } else if (failure.code === WRONG_NAME) {
    text = `${peer.who}: the TLS certificate of ${where} does not name the host "${peer.host}" (${detail}). Connect with a host name the certificate lists, or issue the server a certificate for ${peer.host}; the chain was checked against ${ca}`;
  } else if (EXPIRED.has(failure.code)) {
    text = `${peer.who}: the TLS certificate of ${where} is outside its validity period (${detail}); renew the server's certificate. CA: ${ca}`;
  } else {
    text = `${peer.who}: the TLS certificate of ${where} is not signed by ${ca} (${detail}). Set ${peer.caSetting} to the CA that issued the server's certificate`;
  }
  return Object.assign(new Error(text), { cause: error, code: failure.code });
}

/** Runs `connect`, turning a certificate failure into describeTlsFailure's error. */
export async function withTlsErrors<T>(peer: TlsPeer, connect: () => Promise<T>): Promise<T> {
  try {
    return await connect();
  } catch (error) {
    throw describeTlsFailure(error, peer) ?? error;
  }
}
