"""The cache's stored format: what this service keeps in Redis, and the only code that builds
or parses it (the Lua scripts in `scripts.py` are built from the `LUA` constants below).

Key families, under `CACHE_KEY_PREFIX` (`tales:` by default):

    {entity}:{{entity}.{t}}:{id}                 an entity's entry, or its post-write marker
    {entity}:{{entity}.pages}:{label}[:{filter}={value}…]:l{limit}:o{offset}
                                                 a list page
    epoch:{{entity}.{t}}                         the key epoch of the entries of tag t:
                                                 entries of another epoch are misses
    epoch:{{entity}.pages}                       the key epoch of the entity's pages
    gen:{{entity}.pages}                         the family generation: moves every list
    gen:{{entity}.pages}:{scope}                 one list scope's generation, e.g.
                                                 gen:{hero.pages}:lang:en
    lease:{entry key or page base}               who loads that key now (SET NX PX)
    salt                                         the key salt, without CACHE_KEY_SALT
    identity                                     the dataset's identity (identity.py)
    identity:{{entity}.{t}}, identity:{{entity}.pages}
                                                 the same, per epoch tag (Redis Cluster)
    near:{near}:members                          the live near caches (see near/bus.py)

Hash tags (the `{…}` part, which alone decides a key's Redis Cluster slot) put every key a
script or a hit reads together in one slot, by design: an entry, its marker, its lease and
the epoch of its tag share `{hero.t}`, where `t` = the id modulo `ENTRY_TAGS` — so an entity's
entries spread over `ENTRY_TAGS` slots, hence over every primary of a cluster; an entity's
pages, their leases, its generations and its pages' epoch share `{hero.pages}`. A hit stays
one MGET in one slot. "The entity's epoch" is the set of its `ENTRY_TAGS + 1` epoch keys
(`EntityKeys.epochs`): moving it moves each. Standalone Redis uses the same names (a hash tag
means nothing there), so there is one format. `CACHE_KEY_PREFIX` may hold no `{` or `}`.

`label` is the page's list scope (`all`, `lang:en`, `name:…`) or `exact:{v1}:{v2}:…`; user
values are percent-encoded or hashed (`keys.KeyEncoder`), personal ones always hashed.

Values are JSON objects whose first members are fixed, so that the hit path and the scripts
read them without decoding:

    {"state":"entry","epoch":E,"version":V,"cached_at":"…Z","expires_ms":X,"ttl":T,
     "load_ms":L,"size":S,"entity":<the entity's or page's JSON, as served>}

A page's `epoch` is its stamp, the string `"E:F.S"` of the entity's epoch, family and scope
generations it was filled under (its version is 0): after one MGET of those three counters
and the page, the page is served only if its head names them.
    {"state":"written","version":V}              after a write: fills of older versions fail
    {"state":"deleted","version":9007199254740991}   after a delete (DELETED_VERSION)

Every value names its version within its first `VERSION_SEARCH_BYTES` bytes. `size` is the
length of the embedded JSON: a value truncated or padded on its way is not served.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from app.cache.keys import KeyEncoder
from app.core.registry import EntitySpec

#: The version of a delete marker: above every real version, so no fill outranks it.
#: 2**53 - 1 is the largest integer Lua's numbers (doubles) hold exactly.
DELETED_VERSION = 2**53 - 1

#: Where the version of any value is found: an entry's head up to its version digits takes
#: at most 52 bytes (epochs start below 2**50: 16 digits), which leaves 12 for the version.
VERSION_SEARCH_BYTES = 64

#: Counters (epochs, generations) that do not exist start at a random value below 2**50:
#: a counter lost (expired, evicted, Redis restarted empty) never restarts at a value
#: pages were already stored under.
COUNTER_START_BITS = 50

#: Entries of one entity are spread over this many hash tags (slots), each with its epoch:
#: on three primaries each holds 3 to 7 of every entity's tags; few enough that moving an
#: entity's epoch (after an outage, an admin flush: one script call per tag on a cluster,
#: sent as one pipeline per node) fits
#: in one operation deadline on a loaded machine (64 tags did not: the bench's breaker never
#: closed again). More primaries want more tags, at that cost.
ENTRY_TAGS = 16
PAGES_TAG = "pages"

#: Scope generations expire; they outlive every page that depends on them by this factor.
COUNTER_TTL_FACTOR = 2

ENTRY_STATE_HEAD = b'{"state":"entry",'
_ENTRY_HEAD = re.compile(
    rb'\{"state":"entry","epoch":(?:\d+|"\d+:\d+\.\d+"),"version":(\d+),"cached_at":"[^"]*",'
    rb'"expires_ms":(\d+),"ttl":\d+,"load_ms":(\d+),"size":(\d+),"entity":'
)
_VERSION = re.compile(rb'"version":(\d+)')
_WRITTEN_HEAD = '{"state":"written","version":'
_DELETED_HEAD = '{"state":"deleted","version":'
_MARKER_TAIL = "}"
_STAMP_OPEN, _STAMP_EPOCH_SEP, _STAMP_GENERATION_SEP, _STAMP_CLOSE = '"', ":", ".", '"'

#: What the Lua scripts may rely on, substituted into them as `$name` (Lua string literals).
LUA: Mapping[str, str] = {
    "entry_state_head": ENTRY_STATE_HEAD.decode(),
    "entry_epoch_head": '{"state":"entry","epoch":',
    "version_pattern": '"version":(%d+)',
    "written_head": _WRITTEN_HEAD,
    "marker_tail": _MARKER_TAIL,
    "stamp_open": _STAMP_OPEN,
    "stamp_epoch_sep": _STAMP_EPOCH_SEP,
    "stamp_generation_sep": _STAMP_GENERATION_SEP,
    "stamp_close": _STAMP_CLOSE,
}


# -- values --------------------------------------------------------------------------------
def entry(epoch: bytes, version: int, ttl: int, load_ms: int, body: bytes) -> bytes:
    """A cached entity or page: readable JSON with metadata, the body embedded as it is."""
    now = time.time()
    cached_at = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    head = (
        f'{{"state":"entry","epoch":{epoch.decode()},"version":{version},'
        f'"cached_at":"{cached_at.replace("+00:00", "Z")}","expires_ms":{int((now + ttl) * 1000)},'
        f'"ttl":{ttl},"load_ms":{load_ms},"size":{len(body)},"entity":'
    )
    return head.encode() + body + b"}"


@dataclass(frozen=True, slots=True)
class Entry:
    version: int
    expires_ms: int  # wall clock, ms since the epoch
    load_ms: int  # how long the database load took (early refresh)
    body: bytes


def parse_entry(value: bytes) -> Entry | None:
    """Slice the stored bytes, no JSON decoding. None if the shape is wrong (unknown header,
    or a size that does not match: a truncated or padded value)."""
    match = _ENTRY_HEAD.match(value)
    if match is None or len(value) - match.end() - 1 != int(match[4]) or value[-1:] != b"}":
        return None
    return Entry(int(match[1]), int(match[2]), int(match[3]), value[match.end() : -1])


def entry_head(epoch: bytes) -> bytes:
    """How an entry of this epoch (or a page of this stamp) starts: the hit path's check."""
    return b'{"state":"entry","epoch":%s,' % epoch


def page_stamp(epoch: bytes, family: bytes, scope: bytes) -> bytes:
    """The stamp of a page filled under these counters, as its head names it."""
    return b'"%s:%s.%s"' % (epoch, family, scope)


def marker(version: int) -> bytes:
    """A post-write marker: `deleted` for DELETED_VERSION, else `written`."""
    head = _DELETED_HEAD if version == DELETED_VERSION else _WRITTEN_HEAD
    return f"{head}{version}{_MARKER_TAIL}".encode()


def version_of(value: bytes) -> int:
    """The version any stored value names (entry or marker); 0 if it names none."""
    found = _VERSION.search(value, 0, VERSION_SEARCH_BYTES)
    return int(found[1]) if found else 0


def fresh_counter() -> int:
    """Start value for a counter that does not exist (yet or any more)."""
    return random.getrandbits(COUNTER_START_BITS) + 1


# -- near-cache messages -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NearChannels:
    """The near cache's channels and membership key, for one prefix and one process."""

    invalidations: bytes
    members: str
    heartbeat: bytes
    ack: bytes

    @classmethod
    def of(cls, prefix: str, member: str) -> NearChannels:
        return cls(
            invalidations=f"{prefix}near:invalidations".encode(),
            members=f"{prefix}near:{{near}}:members",
            heartbeat=f"{prefix}near:heartbeat:{member}".encode(),
            ack=f"{prefix}near:ack:{member}".encode(),
        )

    @staticmethod
    def ack_of(prefix: str, writer: str) -> str:
        return f"{prefix}near:ack:{writer}"


def invalidation_message(writer: str, invalidation: str, keys: list[str]) -> bytes:
    return " ".join((writer, invalidation, *keys)).encode()


def parse_invalidation(message: bytes) -> tuple[str, str, list[bytes]]:
    """(writer, invalidation id, keys); keys never hold spaces (see `keys.KeyEncoder`)."""
    writer, invalidation, *keys = message.split(b" ")
    return writer.decode(), invalidation.decode(), keys


# -- keys ----------------------------------------------------------------------------------
def identity_key(prefix: str, epoch_key: str | None = None) -> str:
    """Where the dataset identity lives (`identity.py`): one key, or with `epoch_key` the key
    in that epoch's slot (its hash tag: on a cluster each node's epochs carry their own)."""
    if epoch_key is None:
        return f"{prefix}identity"
    start = epoch_key.index("{")
    return f"{prefix}identity:{epoch_key[start : epoch_key.index('}', start) + 1]}"


def key_salt(prefix: str) -> str:
    """Where the key salt every process shares lives (no TTL: see README, memory policy)."""
    return f"{prefix}salt"


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Where one list query's page lives: its key base and the scope it depends on."""

    base: str  # key without the epoch/generation suffix
    scope: str  # e.g. "hero:lang:en": the scope generation this page depends on


class EntityKeys:
    """The key families of one entity under the service prefix (hash tags: module doc)."""

    def __init__(self, spec: EntitySpec, prefix: str, encoder: KeyEncoder) -> None:
        self.spec = spec
        self.prefix = prefix
        self.encoder = encoder
        name = spec.name
        self.namespace = f"{prefix}{name}:"
        pages = f"{{{name}.{PAGES_TAG}}}"
        self._pages = f"{self.namespace}{pages}:"
        self._entry_tags = [f"{{{name}.{t}}}" for t in range(ENTRY_TAGS)]
        self._entry_epochs = {tag: f"{prefix}epoch:{tag}" for tag in self._entry_tags}
        self.pages_epoch = f"{prefix}epoch:{pages}"
        self.family = f"{prefix}gen:{pages}"
        #: every epoch key of the entity: moving them all moves "the entity's epoch"
        self.epochs = (*self._entry_epochs.values(), self.pages_epoch)

    def entry(self, entity_id: UUID) -> str:
        return f"{self.namespace}{self._entry_tags[entity_id.int % ENTRY_TAGS]}:{entity_id}"

    def epoch_of(self, entry_key: str) -> str:
        """The epoch key of an entry key's tag (same slot)."""
        start = len(self.namespace)
        return self._entry_epochs[entry_key[start : entry_key.index("}", start) + 1]]

    def lease(self, key: str) -> str:
        return f"{self.prefix}lease:{key.removeprefix(self.prefix)}"

    def generation(self, scope: str) -> str:
        return f"{self.family}:{scope.removeprefix(self.spec.name + ':')}"

    def _value(self, attribute: str, value: object) -> str:
        return self.encoder.encode(value, personal=attribute in self.spec.personal)

    def scope_of(self, attribute: str, value: object) -> str:
        for scope in self.spec.scopes:
            if scope.name == attribute:
                return f"{self.spec.name}:{scope.scope}:{self._value(attribute, value)}"
        raise KeyError(attribute)

    def all_scope(self) -> str:
        return f"{self.spec.name}:all"

    def scopes_touched(self, indexed: Mapping[str, object] | None) -> set[str]:
        """The list scopes a row with these filtered attribute values belongs to."""
        if indexed is None:
            return set()
        return {
            self.scope_of(scope.name, indexed[scope.name])
            for scope in self.spec.scopes
            if indexed.get(scope.name) is not None
        }

    def page(self, filters: Mapping[str, Any], limit: int, offset: int) -> PageQuery:
        spec = self.spec
        scope = next((s for s in spec.scopes if s.name in filters), None)
        scope_key = self.scope_of(scope.name, filters[scope.name]) if scope else self.all_scope()
        if spec.exact_match and set(spec.exact_match) == set(filters):
            label = "exact:" + ":".join(
                self._value(name, filters[name]) for name in spec.exact_match
            )
            rest: dict[str, Any] = {}
        else:
            label = scope_key.removeprefix(f"{spec.name}:")
            rest = {k: v for k, v in filters.items() if scope is None or k != scope.name}
        extra = "".join(f":{k}={self._value(k, v)}" for k, v in sorted(rest.items()))
        return PageQuery(f"{self._pages}{label}{extra}:l{limit}:o{offset}", scope_key)
