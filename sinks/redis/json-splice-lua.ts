/**
 * Lua helpers that copy top-level members of one stored JSON object into
 * another WITHOUT decoding them: Redis's cjson re-encodes numbers with 14
 * significant digits (0.30000000000000004 would come back as 0.3), so values
 * are moved as raw text. The documents are the sink's own JSON.stringify
 * output (compact, an object at the top), which is all this scanner handles;
 * anything else raises an error that the caller catches with pcall.
 */
export const JSON_SPLICE_LUA = `
local function string_end(s, i)
  local j = i + 1
  while true do
    local q = string.find(s, '["\\\\]', j)
    if not q then error('unterminated string') end
    if string.byte(s, q) == 92 then j = q + 2 else return q end
  end
end

local function value_end(s, i)
  local c = string.byte(s, i)
  if c == 34 then return string_end(s, i) end
  if c == 123 or c == 91 then
    local depth, j = 0, i
    while true do
      local q = string.find(s, '[%[%]{}"]', j)
      if not q then error('unbalanced brackets') end
      local b = string.byte(s, q)
      if b == 34 then
        j = string_end(s, q) + 1
      else
        if b == 123 or b == 91 then depth = depth + 1 else depth = depth - 1 end
        if depth == 0 then return q end
        j = q + 1
      end
    end
  end
  local q = string.find(s, '[,}%]]', i)
  if not q then error('unterminated value') end
  return q - 1
end

-- raw member name (with its quotes) -> raw value text
local function members(s)
  if string.byte(s, 1) ~= 123 then error('not a JSON object') end
  local out, i, n = {}, 2, #s
  while i < n do
    local name_end = string_end(s, i)
    local value_start = name_end + 2
    local last = value_end(s, value_start)
    out[string.sub(s, i, name_end)] = string.sub(s, value_start, last)
    i = last + 2
  end
  return out
end

-- Appends to doc the members of stored named in names[first..]; returns the new doc and how many were missing.
local function keep_members(doc, stored, names, first)
  local old = members(stored)
  local parts, missing = {}, 0
  for k = first, #names do
    local value = old[names[k]]
    if value then parts[#parts + 1] = names[k] .. ':' .. value else missing = missing + 1 end
  end
  if #parts == 0 then return doc, missing end
  local extra = table.concat(parts, ',')
  if doc == '{}' then return '{' .. extra .. '}', missing end
  return string.sub(doc, 1, -2) .. ',' .. extra .. '}', missing
end
`;
