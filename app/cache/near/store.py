"""The near cache's memory: whole responses of the entity GET routes, bounded by bytes.

An entry is the exact response the full path sent (status, headers, body) for one request
target (path and query string), with the Redis keys it depends on: the entity's entry key
and epoch (by id), or the page's list scope, family and epoch generations (lists). An
invalidation names keys; every entry depending on one of them is dropped. The least
recently used entries go first when the bound is reached; an entry larger than a quarter
of the bound is not kept.

Not thread-safe: it lives on one event loop, as the process's requests do.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

#: What an entry costs besides its bytes (objects, index slots), for the bound.
ENTRY_OVERHEAD_BYTES = 400
#: The largest entry kept, as a share of the bound.
MAX_ENTRY_SHARE = 0.25


@dataclass(slots=True)
class NearEntry:
    entity: str
    route: str  # the route template, for metrics
    etag: str | None  # None: no 304 (lists)
    start: MutableMapping[str, Any]  # the http.response.start message
    body: bytes
    not_modified: MutableMapping[str, Any] | None  # the 304 start message (If-None-Match)
    deps: tuple[bytes, ...]  # the Redis keys whose invalidation drops it
    expires: float  # monotonic time at which the Redis entry it copies expires
    size: int = field(default=0)


class NearStore:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[bytes, NearEntry] = OrderedDict()
        self._by_dep: dict[bytes, set[bytes]] = {}
        self.evictions = 0
        self.rejected = 0  # entries too large to keep

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, target: bytes) -> NearEntry | None:
        entry = self._entries.get(target)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            self._remove(target)
            return None
        self._entries.move_to_end(target)
        return entry

    def put(self, target: bytes, entry: NearEntry) -> bool:
        entry.size = len(target) + len(entry.body) + ENTRY_OVERHEAD_BYTES
        if entry.size > self.max_bytes * MAX_ENTRY_SHARE:
            self.rejected += 1
            return False
        if target in self._entries:
            self._remove(target)
        while self._entries and self.bytes + entry.size > self.max_bytes:
            self._remove(next(iter(self._entries)))
            self.evictions += 1
        self._entries[target] = entry
        self.bytes += entry.size
        for dep in entry.deps:
            self._by_dep.setdefault(dep, set()).add(target)
        return True

    def drop(self, keys: Iterable[bytes]) -> int:
        """Drop every entry depending on one of these Redis keys."""
        dropped = 0
        for key in keys:
            for target in self._by_dep.pop(key, ()):
                if target in self._entries:
                    self._remove(target)
                    dropped += 1
        return dropped

    def clear(self) -> None:
        self._entries.clear()
        self._by_dep.clear()
        self.bytes = 0

    def _remove(self, target: bytes) -> None:
        entry = self._entries.pop(target)
        self.bytes -= entry.size
        for dep in entry.deps:
            targets = self._by_dep.get(dep)
            if targets is not None:
                targets.discard(target)
                if not targets:
                    del self._by_dep[dep]
