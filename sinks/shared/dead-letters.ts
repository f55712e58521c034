/**
 * Sinks record the events they cannot apply here. The store itself lives in core/runtime
 * (the runtime lists, counts and replays dead letters: `cdc dead-letters`, `cdc status`).
 */
export { DeadLetter, DeadLetterLimits, DeadLetterStore, DEFAULT_DEAD_LETTER_LIMITS } from '../../core/runtime/dead-letters';
