"""The Lua scripts that make cache-aside safe under concurrency.

They read values and build page keys only as `format.py` documents them: its `LUA`
constants are substituted for the `$names` below, so the layout has one owner.

- An entry is served only if it belongs to the entity's current epoch (an epoch moves after
  an outage in which invalidations may have been lost, and on an admin flush).
- A fill carries the epoch seen at miss time and the version read from the database; it
  never replaces a value holding a newer version (entry or post-write marker, any epoch) and
  never lands in a newer epoch. So a reader that read the old row before a write committed
  cannot store it after the write's invalidation: the marker's version stops it.
- A fill also needs the load lease it took before reading the database (Meta's leases), and
  an invalidation deletes the leases of the entries it marks. So a reader that read the old
  row cannot store it even when the marker itself is gone (evicted, expired): its lease went
  with the invalidation. Any key lost to eviction makes a fill fail, never succeed.
- A list page carries the generation counters it was filled under (its stamp); a write INCRs
  the counters of the lists it affects, in O(1) round trips, so a page of an older stamp is
  never served, and a fill made under an old generation is refused. Missing counters start
  at a random value, never at a reused one.
"""

from string import Template

from app.cache.format import LUA


def _lua(source: str) -> str:
    quoted = {
        name: "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        for name, value in LUA.items()
    }
    return Template(source).substitute(quoted)


_CURRENT = """
local function current(key, fresh, ttl)
  local value = redis.call('GET', key)
  if not value then
    if ttl then
      redis.call('SET', key, fresh, 'NX', 'EX', ttl)
    else
      redis.call('SET', key, fresh, 'NX')
    end
    value = redis.call('GET', key)
  end
  return value
end
local function version_of(value)
  return tonumber(string.match(value, $version_pattern)) or 0
end
"""

# The hit path reads entries with a plain MGET of the epoch and the entry (service.py); this
# script is the miss path: it also takes the load lease.
# KEYS: epoch, entry, lease   ARGV: fresh epoch, lease token ('' = none), lease ms
# -> {epoch, entry} on a hit; {epoch, false, floor version, lease taken} on a miss
READ_ENTRY = _lua(
    _CURRENT
    + """
local epoch = current(KEYS[1], ARGV[1])
local value = redis.call('GET', KEYS[2])
local floor = 0
if value then
  local head = $entry_epoch_head .. epoch .. ','
  if string.sub(value, 1, #head) == head then
    return {epoch, value}
  end
  floor = version_of(value)
end
local lease = 0
if ARGV[2] ~= '' and redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
  lease = 1
end
return {epoch, false, floor, lease}
"""
)

# KEYS: epoch, entry, lease   ARGV: epoch at miss, version, payload, ttl s, lease token
# -> 1 stored, 0 refused (the lease is not ours any more: an invalidation took it, or it
# expired or was evicted; a newer epoch; a newer version)
FILL_ENTRY = _lua(
    _CURRENT
    + """
if redis.call('GET', KEYS[3]) ~= ARGV[5] then
  return 0
end
redis.call('DEL', KEYS[3])
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local existing = redis.call('GET', KEYS[2])
if existing and version_of(existing) > tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
return 1
"""
)

# The hit path reads pages with a plain MGET of the counters and the page (service.py);
# this script is the miss path: it creates missing counters and takes the load lease.
# KEYS: epoch, family generation, scope generation, page, lease
# ARGV: fresh value, lease token ('' = none), lease ms, scope counter ttl s
# -> {stamp, page} on a hit; {stamp, false, 0, lease taken} on a miss
READ_PAGE = _lua(
    _CURRENT
    + """
local stamp = $stamp_open .. current(KEYS[1], ARGV[1])
  .. $stamp_epoch_sep .. current(KEYS[2], ARGV[1])
  .. $stamp_generation_sep .. current(KEYS[3], ARGV[1], ARGV[4]) .. $stamp_close
local value = redis.call('GET', KEYS[4])
if value then
  local head = $entry_epoch_head .. stamp .. ','
  if string.sub(value, 1, #head) == head then
    return {stamp, value}
  end
end
local lease = 0
if ARGV[2] ~= '' and redis.call('SET', KEYS[5], ARGV[2], 'NX', 'PX', ARGV[3]) then
  lease = 1
end
return {stamp, false, 0, lease}
"""
)

# KEYS: epoch, family generation, scope generation, page, lease
# ARGV: stamp at miss, payload, ttl s, lease token
# -> 1 stored, 0 refused: the lease is not ours any more, or the generations moved since
# the miss (a write changed the list)
FILL_PAGE = _lua(
    """
if redis.call('GET', KEYS[5]) ~= ARGV[4] then
  return 0
end
redis.call('DEL', KEYS[5])
local counters = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
if not counters[1] or not counters[2] or not counters[3] then
  return 0
end
local stamp = $stamp_open .. counters[1] .. $stamp_epoch_sep .. counters[2]
  .. $stamp_generation_sep .. counters[3] .. $stamp_close
if stamp ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
return 1
"""
)

# Near caches (near/bus.py): the scripts that change what readers may see also publish the
# keys they changed, and answer which processes keep a near cache: {now ms, member, until ms,
# member, until ms, ...} (empty when no channel is given).
_NEAR_PUBLISH = """
local function near_publish(members_key, channel, message)
  if channel == '' then
    return {}
  end
  local time = redis.call('TIME')
  local now = time[1] * 1000 + math.floor(time[2] / 1000)
  redis.call('PUBLISH', channel, message)
  local live = redis.call('ZRANGEBYSCORE', members_key, now, '+inf', 'WITHSCORES')
  table.insert(live, 1, now)
  return live
end
"""

# KEYS: marker keys..., their lease keys (same order)..., entity-wide counters (epochs,
#       families)..., scope counters..., [near members]
# ARGV: number of markers, number of entity-wide counters, fresh value, scope counter ttl s,
#       near channel ('' = none), near message, then per marker: version, marker, ttl s
# A marker never replaces a value of a newer version; the marked entry's lease is deleted
# either way (whoever holds it may have read the row before this write); a missing counter
# starts fresh.
# Scope counters (one per filter value) expire, entity-wide ones do not; either way a
# counter that is gone restarts at a fresh random value, never at one already used.
INVALIDATE = _lua(
    _CURRENT
    + _NEAR_PUBLISH
    + """
local markers = tonumber(ARGV[1])
local leases = 2 * markers
local permanent = leases + tonumber(ARGV[2])
local last = #KEYS
if ARGV[5] ~= '' then
  last = last - 1
end
for i = 1, markers do
  local version = tonumber(ARGV[4 + 3 * i])
  local existing = redis.call('GET', KEYS[i])
  if not existing or version_of(existing) < version then
    redis.call('SET', KEYS[i], ARGV[5 + 3 * i], 'EX', ARGV[6 + 3 * i])
  end
  redis.call('DEL', KEYS[markers + i])
end
for i = leases + 1, last do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCR', KEYS[i])
    if i > permanent then
      redis.call('EXPIRE', KEYS[i], ARGV[4])
    end
  elseif i > permanent then
    redis.call('SET', KEYS[i], ARGV[3], 'EX', ARGV[4])
  else
    redis.call('SET', KEYS[i], ARGV[3])
  end
end
return near_publish(KEYS[#KEYS], ARGV[5], ARGV[6])
"""
)

# KEYS: entry keys..., their lease keys (same order)..., [near members]
# ARGV: ttl s, near channel ('' = none), near message
# Manual invalidation of single entries: the entry stops being served, its version stays as
# the floor for fills (a plain DEL would let a slow reader store an older row), and its lease
# is deleted (its holder may have read the row before the fix). The version is copied as the
# digits it was stored with, a string: never through a Lua number, which would print 2^53-1
# as 9.007199254741e+15 (read back as 9).
DEMOTE = _lua(
    _NEAR_PUBLISH
    + """
local last = #KEYS
if ARGV[2] ~= '' then
  last = last - 1
end
local entries = last / 2
for i = 1, entries do
  local existing = redis.call('GET', KEYS[i])
  if existing then
    local version = string.match(existing, $version_pattern) or '0'
    redis.call('SET', KEYS[i], $written_head .. version .. $marker_tail, 'EX', ARGV[1])
  end
  redis.call('DEL', KEYS[entries + i])
end
return near_publish(KEYS[#KEYS], ARGV[2], ARGV[3])
"""
)

# KEYS: lease   ARGV: lease token  -> 1 released, 0 not ours (any more)
# A lease holder that does not fill (no such row, a database error, a load too slow to store,
# a cancelled request) gives the lease back, so that other readers load at once instead of
# waiting `CACHE_LEASE_WAIT_MS` for a fill that will not come.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: key salt   ARGV: a fresh random salt  -> the salt every process uses
# Without `CACHE_KEY_SALT`, the first process to start generates the salt personal values in
# keys are hashed with; every process reads the same one.
KEY_SALT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""

# KEYS: near members   ARGV: member, lease ms, heartbeat channel, sequence
# Register this process until `lease ms` from now (Redis time), forget the members whose
# registration ran out, and send the heartbeat its subscription will echo.
HEARTBEAT = """
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PUBLISH', ARGV[3], ARGV[4])
return now
"""

# KEYS: keys found by SCAN   -> number deleted. Deletes cached entries and pages, keeps
# post-write markers (they guard against stale fills) and counters.
DELETE_ENTRIES = _lua(
    """
local deleted = 0
local head = $entry_state_head
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value and string.sub(value, 1, #head) == head then
    redis.call('UNLINK', KEYS[i])
    deleted = deleted + 1
  end
end
return deleted
"""
)
