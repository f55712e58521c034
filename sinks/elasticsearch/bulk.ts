import { ChangeEvent } from '../../core/event/change-event';
import { Backoff, sleep } from '../../core/runtime/backoff';
import { Logger } from '../../core/runtime/logger';
import { describeEsError, EsHttp } from './es-http';
import { utf8Of } from '../../core/log/json-pieces';

/** One _bulk action: an index (with the document) or a delete, versioned externally (external_gte, see external-version.ts). */
export interface BulkAction {
  event: ChangeEvent;
  index: string;
  id: string;
  version: bigint;
  /**
   * JSON text of the document; absent for a delete. As pieces to write one after the other when the row
   * holds a large value (jsonPieces(): the value itself is a piece, not copied into one more string).
   */
  document?: string | string[];
}

export interface BulkOutcome {
  applied: number;
  /** Refused by ES as not newer (409): a duplicate or stale event, which is success for us. */
  stale: number;
  /** Refused for good (mapping errors and other 4xx): for the dead-letter store. */
  rejected: { event: ChangeEvent; reason: string }[];
}

interface BulkItemResult {
  status: number;
  error?: unknown;
}

/** The action's lines of the _bulk body, as pieces to write one after the other. */
function actionLines(action: BulkAction): string[] {
  const op = action.document === undefined ? 'delete' : 'index';
  // The version is written as digits, not through a JS number: it can exceed 2^53.
  const meta = `{"${op}":{"_index":${JSON.stringify(action.index)},"_id":${JSON.stringify(action.id)},"version":${action.version},"version_type":"external_gte"}}\n`;
  if (action.document === undefined) return [meta];
  return typeof action.document === 'string' ? [meta, action.document, '\n'] : [meta, ...action.document, '\n'];
}

/**
 * The _bulk body: one string, or, when a document comes in pieces (a large value), the bytes written
 * piece by piece (joining them into a string would copy the value once more, and encoding it again).
 */
export function bulkBody(actions: readonly BulkAction[]): string | Buffer {
  const pieces = actions.flatMap(actionLines);
  return actions.every((a) => typeof a.document !== 'object') ? pieces.join('') : utf8Of(pieces);
}

const documentChars = (document: string | string[] | undefined) =>
  document === undefined ? 0 : typeof document === 'string' ? document.length : document.reduce((sum, piece) => sum + piece.length, 0);

/**
 * Only what the outcome is read from: each item's status and error. The full reply repeats index, id,
 * version, shards and sequence numbers for every item, ~8× the bytes, and parsing it was a few
 * percent of the sink's replay (the same as Logstash's output does).
 */
const BULK_REPLY_FIELDS = { filter_path: 'errors,items.*.status,items.*.error' };

/**
 * Document bytes (UTF-16 units) in one _bulk request at most, a lone bigger document excepted: a request's
 * body is built whole (joined, then encoded), so three 5 MB documents sent together held ~30 MB at once.
 */
export const MAX_BULK_DOCUMENT_CHARS = 8 * 1024 * 1024;

/** Consecutive runs of `actions`, each at most `maxActions` long and about `maxChars` of documents (at least one action). */
export function bulkRequests(actions: readonly BulkAction[], maxActions: number, maxChars = MAX_BULK_DOCUMENT_CHARS): BulkAction[][] {
  const requests: BulkAction[][] = [];
  let current: BulkAction[] = [];
  let chars = 0;
  for (const action of actions) {
    const size = documentChars(action.document);
    if (current.length > 0 && (current.length >= maxActions || chars + size > maxChars)) {
      requests.push(current);
      current = [];
      chars = 0;
    }
    current.push(action);
    chars += size;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

/**
 * Sends actions in _bulk requests of at most `maxActions` (and bulkRequests()' bytes). Items ES rejects
 * with 429 or 5xx (and whole requests answered so, or lost to a connection
 * error) are sent again with backoff; a 409 version conflict and a 404 on
 * delete are success; any other 4xx is final.
 */
export async function sendBulk(http: EsHttp, actions: BulkAction[], options: { maxActions: number; maxAttempts: number; retryBaseMs: number; logger: Logger; sink: string }): Promise<BulkOutcome> {
  const outcome: BulkOutcome = { applied: 0, stale: 0, rejected: [] };
  for (const request of bulkRequests(actions, options.maxActions)) {
    let pending = request;
    const backoff = new Backoff(options.retryBaseMs, 10_000);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const retry: BulkAction[] = [];
      let why = '';
      try {
        const reply = await http.request<{ items?: Record<string, BulkItemResult>[] }>('POST', '/_bulk', bulkBody(pending), BULK_REPLY_FIELDS);
        if (reply.status === 429 || reply.status >= 500) {
          retry.push(...pending);
          why = `request answered ${reply.status}: ${describeEsError(reply.body)}`;
        } else if (reply.status !== 200 || !reply.body.items) {
          throw new Error(`sink ${options.sink}: _bulk request failed with ${reply.status}: ${describeEsError(reply.body)}`);
        } else {
          reply.body.items.forEach((item, i) => {
            const result = Object.values(item)[0];
            const action = pending[i];
            if (result.status < 300 || (result.status === 404 && action.document === undefined)) outcome.applied++;
            else if (result.status === 409) outcome.stale++;
            else if (result.status === 429 || result.status >= 500) {
              retry.push(action);
              why = `items answered ${result.status}: ${describeEsError(result)}`;
            } else outcome.rejected.push({ event: action.event, reason: `Elasticsearch refused the document (${result.status}) ${describeEsError(result)}` });
          });
        }
      } catch (error) {
        if (!isTransient(error)) throw error;
        retry.push(...pending);
        why = (error as Error).message;
      }
      if (retry.length === 0) break;
      if (attempt >= options.maxAttempts) {
        throw new Error(`sink ${options.sink}: ${retry.length} actions still refused after ${attempt} attempts (${why}); the batch will be retried`);
      }
      const delayMs = backoff.nextDelayMs();
      options.logger.warn('elasticsearch pushed back; retrying', { sink: options.sink, actions: retry.length, why, inMs: delayMs });
      await sleep(delayMs);
      pending = retry;
    }
  }
  return outcome;
}

function isTransient(error: unknown): boolean {
  const name = (error as Error).name;
  return name === 'ConnectionError' || name === 'TimeoutError' || name === 'NoLivingConnectionsError';
}
