/**
 * A transaction's changes are handed to the log in parts of at most this many
 * events, or about this many bytes of the source's messages (a lone bigger
 * change alone), so that a transaction of millions of rows, or of rows of
 * megabytes, never sits whole in memory. The checkpoint stays at the last
 * complete transaction until its end is handed over: a crash replays the whole
 * transaction, with the same versions, which sinks ignore. 1 MiB as for
 * snapshot chunks (chunk-sizer.ts): a part lives until it is appended, and a
 * bigger one outlives V8's bounded young generation.
 */
export const TRANSACTION_PART_EVENTS = 1000;
export const TRANSACTION_PART_BYTES = 1024 * 1024;

/** Bytes of source messages queued ahead of the decoder's consumer above which the stream is paused (resumed below a quarter). */
export const STREAM_QUEUE_BYTES = 8 * 1024 * 1024;
