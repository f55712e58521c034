/**
 * Lua scripts run atomically in Redis, so a version check and the write it
 * guards cannot interleave with another writer.
 *
 * Versions are fixed-width hex strings (core/event/version.ts): Lua's string
 * comparison orders them. A table's version hash also holds the field
 * `\0truncated`, the version of the table's last truncate: nothing older than
 * it may write.
 */
export const TRUNCATED_FIELD = '\u0000truncated';

/**
 * KEYS[1] row key, KEYS[2] the table's version hash.
 * ARGV[1] primary key (hash field), ARGV[2] version, ARGV[3] 'set' or 'del', ARGV[4] row JSON.
 * Returns 1 when applied, 0 when the event is not newer than what is stored.
 */
export const APPLY_CHANGE = `
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and current >= ARGV[2] then return 0 end
local truncated = redis.call('HGET', KEYS[2], '${TRUNCATED_FIELD}')
if truncated and truncated >= ARGV[2] then return 0 end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[4])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

/**
 * KEYS[1] the table's version hash. ARGV[1] truncate version. Records the truncate;
 * returns 1 when it is newer than the last one recorded.
 */
export const RECORD_TRUNCATE = `
local truncated = redis.call('HGET', KEYS[1], '${TRUNCATED_FIELD}')
if truncated and truncated >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], '${TRUNCATED_FIELD}', ARGV[1])
return 1
`;

/**
 * KEYS[1] row key, KEYS[2] the table's version hash. ARGV[1] primary key, ARGV[2] truncate version.
 * Deletes the row if it was written before the truncate.
 */
export const DELETE_IF_OLDER = `
local current = redis.call('HGET', KEYS[2], ARGV[1])
if current and current < ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
`;
