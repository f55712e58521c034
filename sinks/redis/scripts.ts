import { JSON_SPLICE_LUA } from './json-splice-lua';

/**
 * Lua scripts run atomically in Redis, so a version check and the write it
 * guards cannot interleave with another writer.
 *
 * A table's version hash maps each row's key to its stamp: source version,
 * then generation (sinks/shared/version.ts), fixed width, so Lua's string
 * comparison orders them. Stamps of older layouts (a bare 24-digit version;
 * generation first, 32 digits) are read in the current layout. The hash also
 * holds the field `\0truncated`, the stamp of the table's last truncate:
 * nothing older than it may write.
 */
export const TRUNCATED_FIELD = '\u0000truncated';

const STAMP_LUA = `
local function stamp_of(s)
  if not s then return s end
  if #s == 24 then return s .. '.00000000' end
  if #s == 32 and not string.find(s, '.', 1, true) then return string.sub(s, 9) .. '.' .. string.sub(s, 1, 8) end
  return s
end
`;

/**
 * Applies one change (a Lua function, called per change by APPLY_CHANGES):
 * row_key, version_key, field (row key within the table), stamp, op ('set' or
 * 'del'), doc (row JSON), ttl (ms, '0': none), names (JSON-quoted names of
 * columns to keep from the stored row: unchanged TOAST), truncated (the
 * table's truncate stamp, or false).
 * Returns 0 when the change is not newer than what is stored, 1 when applied,
 * 2 when applied but the stored row to keep columns from was missing (expired)
 * or unreadable, 3 when not applied: columns to keep and the row was never
 * written (no stamp: e.g. its primary-key change was dead-lettered).
 */
const APPLY_ONE_LUA = `
local function apply_one(row_key, version_key, field, stamp, op, doc, ttl, names, truncated)
  local current = stamp_of(redis.call('HGET', version_key, field))
  if current and current >= stamp then return 0 end
  if truncated and truncated >= stamp then return 0 end
  local result = 1
  if op == 'del' then
    redis.call('DEL', row_key)
  else
    if #names > 0 then
      if not current then return 3 end
      local stored = redis.call('GET', row_key)
      local ok, merged, missing = false, nil, 0
      if stored then ok, merged, missing = pcall(keep_members, doc, stored, names, 1) end
      if ok then doc = merged end
      if not ok or missing > 0 then result = 2 end
    end
    if ttl ~= '0' then
      redis.call('SET', row_key, doc, 'PX', ttl)
    else
      redis.call('SET', row_key, doc)
    end
  end
  redis.call('HSET', version_key, field, stamp)
  return result
end
`;

/** Arguments of one change in APPLY_CHANGES, before its column names. */
export const APPLY_ARGS_PER_CHANGE = 6;

/**
 * Applies a run of changes in order, in one call (one script run per change
 * cost Redis more than the writes themselves). KEYS: per change its row key
 * and its table's version hash. ARGV: per change field, stamp, op, doc, ttl,
 * the count n of column names to keep, then those n names (see apply_one).
 * Returns each change's result in order. No truncate runs inside the call, so
 * a table's truncate stamp is read once per call.
 */
export const APPLY_CHANGES = `${STAMP_LUA}${JSON_SPLICE_LUA}${APPLY_ONE_LUA}
local results, truncates, a = {}, {}, 1
for c = 1, #KEYS / 2 do
  local row_key, version_key = KEYS[2 * c - 1], KEYS[2 * c]
  local n = tonumber(ARGV[a + 5])
  local names = {}
  for k = 1, n do names[k] = ARGV[a + 5 + k] end
  local truncated = truncates[version_key]
  if truncated == nil then
    truncated = stamp_of(redis.call('HGET', version_key, '${TRUNCATED_FIELD}')) or false
    truncates[version_key] = truncated
  end
  results[c] = apply_one(row_key, version_key, ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], names, truncated)
  a = a + ${APPLY_ARGS_PER_CHANGE} + n
end
return results
`;

/**
 * KEYS[1] the table's version hash. ARGV[1] truncate stamp. Records the truncate;
 * returns 1 when it is newer than the last one recorded.
 */
export const RECORD_TRUNCATE = `${STAMP_LUA}
local truncated = stamp_of(redis.call('HGET', KEYS[1], '${TRUNCATED_FIELD}'))
if truncated and truncated >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], '${TRUNCATED_FIELD}', ARGV[1])
return 1
`;

/**
 * KEYS[1] row key, KEYS[2] the table's version hash. ARGV[1] hash field, ARGV[2] a stamp.
 * Deletes the row and its bookkeeping if its stamp is below ARGV[2], a truncate's
 * stamp: only rows older than the truncate go.
 */
export const DELETE_IF_OLDER = `${STAMP_LUA}
local current = stamp_of(redis.call('HGET', KEYS[2], ARGV[1]))
if current and current < ARGV[2] then
  if ARGV[1] ~= '${TRUNCATED_FIELD}' then redis.call('DEL', KEYS[1]) end
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
`;

/**
 * KEYS[1] row key, KEYS[2] the table's version hash. ARGV[1] hash field, ARGV[2]
 * a generation as 8 hex digits. The switch's sweep: deletes the row and its
 * bookkeeping when the generation being promoted did not write it (its stamp's
 * generation is lower). The truncate field stays: it is a true lower bound.
 */
export const DELETE_IF_OLDER_GENERATION = `${STAMP_LUA}
if ARGV[1] == '${TRUNCATED_FIELD}' then return 0 end
local current = stamp_of(redis.call('HGET', KEYS[2], ARGV[1]))
if current and string.sub(current, -8) < ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
`;
