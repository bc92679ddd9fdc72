/**
 * The Lua scripts behind the Redis record store. Each runs atomically, so a
 * version check and its write, or a record and its index entries, change
 * together. Keys are built inside the scripts from one base (ARGV[1]) that
 * carries a hash tag, so every key lands in one cluster slot:
 *   <base><kind>:id:<id>          hash: version status matchKey createdAt expiresAt body
 *   <base><kind>:all              sorted set of ids by createdAt
 *   <base><kind>:status:<status>  sorted set of ids by createdAt
 *   <base><kind>:match:<matchKey> sorted set of ids by createdAt
 *   <base>expiry                  sorted set of "<kind>:<id>" by expiresAt
 */

const INDEX = `
local function index(base, kind, id, status, matchKey, createdAt)
  redis.call('ZADD', base .. kind .. ':all', createdAt, id)
  redis.call('ZADD', base .. kind .. ':status:' .. status, createdAt, id)
  redis.call('ZADD', base .. kind .. ':match:' .. matchKey, createdAt, id)
end
local function unindex(base, kind, id, status, matchKey)
  redis.call('ZREM', base .. kind .. ':all', id)
  redis.call('ZREM', base .. kind .. ':status:' .. status, id)
  redis.call('ZREM', base .. kind .. ':match:' .. matchKey, id)
end
`;

/** ARGV: base kind id status matchKey createdAt expiresAt body → 1 stored, 0 one exists. */
export const INSERT = `${INDEX}
local base, kind, id = ARGV[1], ARGV[2], ARGV[3]
local key = base .. kind .. ':id:' .. id
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'version', 1, 'status', ARGV[4], 'matchKey', ARGV[5],
  'createdAt', ARGV[6], 'expiresAt', ARGV[7], 'body', ARGV[8])
index(base, kind, id, ARGV[4], ARGV[5], ARGV[6])
redis.call('ZADD', base .. 'expiry', ARGV[7], kind .. ':' .. id)
return 1
`;

/** ARGV: base kind id expectedVersion status matchKey expiresAt body → the stored createdAt, or false. */
export const REPLACE = `${INDEX}
local base, kind, id = ARGV[1], ARGV[2], ARGV[3]
local key = base .. kind .. ':id:' .. id
local now = redis.call('HMGET', key, 'version', 'status', 'matchKey', 'createdAt')
if not now[1] or now[1] ~= ARGV[4] then return false end
unindex(base, kind, id, now[2], now[3])
index(base, kind, id, ARGV[5], ARGV[6], now[4])
redis.call('ZADD', base .. 'expiry', ARGV[7], kind .. ':' .. id)
redis.call('HSET', key, 'version', tonumber(ARGV[4]) + 1, 'status', ARGV[5], 'matchKey', ARGV[6],
  'expiresAt', ARGV[7], 'body', ARGV[8])
return now[4]
`;

/** ARGV: base "(before" batch → how many were deleted (at most batch). */
export const PURGE = `${INDEX}
local base = ARGV[1]
local gone = redis.call('ZRANGEBYSCORE', base .. 'expiry', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(gone) do
  local at = string.find(member, ':', 1, true)
  local kind, id = string.sub(member, 1, at - 1), string.sub(member, at + 1)
  local key = base .. kind .. ':id:' .. id
  local now = redis.call('HMGET', key, 'status', 'matchKey')
  if now[1] then unindex(base, kind, id, now[1], now[2]) end
  redis.call('DEL', key)
  redis.call('ZREM', base .. 'expiry', member)
end
return #gone
`;

/**
 * ARGV: base kind limit matchKey-or-empty hasMatchKey status… → flat list of
 * [id, version, status, matchKey, createdAt, expiresAt, body] per record,
 * read in one step. With a match key it walks that index newest first and
 * keeps the wanted statuses; with statuses only it takes the newest `limit` of
 * each status (the caller merges); with neither, the newest of the kind.
 */
export const FIND = `
local base, kind, limit, matchKey, hasMatch = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
local wanted = nil
if #ARGV > 5 then
  wanted = {}
  for i = 6, #ARGV do wanted[ARGV[i]] = true end
end
local out = {}
local function emit(id)
  local v = redis.call('HMGET', base .. kind .. ':id:' .. id, 'version', 'status', 'matchKey', 'createdAt',
    'expiresAt', 'body')
  if not v[1] then return false end
  if wanted and not wanted[v[2]] then return false end
  table.insert(out, id)
  for _, field in ipairs(v) do table.insert(out, field) end
  return true
end
if hasMatch then
  local ids = redis.call('ZREVRANGE', base .. kind .. ':match:' .. matchKey, 0, -1)
  local kept = 0
  for _, id in ipairs(ids) do
    if kept >= limit then break end
    if emit(id) then kept = kept + 1 end
  end
elseif wanted then
  for status in pairs(wanted) do
    for _, id in ipairs(redis.call('ZREVRANGE', base .. kind .. ':status:' .. status, 0, limit - 1)) do emit(id) end
  end
else
  for _, id in ipairs(redis.call('ZREVRANGE', base .. kind .. ':all', 0, limit - 1)) do emit(id) end
end
return out
`;
