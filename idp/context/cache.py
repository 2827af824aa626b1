"""Bounded caches for academic context, with a last-known-good copy for when the LMS is down.

Each kind of data has its own ``cachetools.TTLCache`` (fresh answers) and a bounded
``LRUCache`` that remembers the last good answer past its TTL, so a failing LMS can still be
answered from cache, marked stale with its age. Entries carry tags (``student:42``,
``mentor:7``, ``batch:3``); dropping a tag removes every entry that mentions it from both
stores (provisioning saw the person change or leave).

Optionally a shared level (:class:`idp.context.shared.SharedLevel`, Redis) sits under the fresh
caches: a miss here asks it before the LMS, an answer read from the LMS is written to both, and
a dropped tag is dropped everywhere. A fresh entry expires at ``fetched_at + TTL`` wherever it
is held, so an answer copied from the shared level is not kept longer than its TTL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache, TLRUCache

from .. import clock

if TYPE_CHECKING:
    from .shared import SharedLevel


def _timer() -> float:
    return clock.now().timestamp()


@dataclass(frozen=True)
class Cached:
    """A value and when it was read from the LMS (epoch seconds)."""

    value: Any
    fetched_at: float

    def age(self) -> float:
        return max(0.0, _timer() - self.fetched_at)


class _TaggedLRU(LRUCache):
    """LRU store that tells its owner which keys it evicts (cachetools: override popitem)."""

    def __init__(self, maxsize: int, on_evict: Callable[[Hashable], None]):
        super().__init__(maxsize)
        self._on_evict = on_evict

    def popitem(self):
        key, value = super().popitem()
        self._on_evict(key)
        return key, value


def _expires(ttl: int) -> Callable[[Hashable, Cached, float], float]:
    return lambda _key, entry, _now: entry.fetched_at + ttl


class ContextCache:
    """Fresh TTL caches per kind plus one last-known-good LRU store, all thread-safe; and
    the shared level under them when one is given."""

    def __init__(self, ttls: dict[str, int], maxsize: int, shared: SharedLevel | None = None):
        self._lock = threading.RLock()
        self._fresh = {kind: TLRUCache(maxsize, _expires(ttl), timer=_timer)
                       for kind, ttl in ttls.items()}
        self._tags: dict[str, set[tuple[str, Hashable]]] = {}
        self._key_tags: dict[tuple[str, Hashable], tuple[str, ...]] = {}
        # Holds every kind; four times the fresh size so stale copies outlive fresh ones.
        self._good = _TaggedLRU(maxsize * 4, self._untag)
        self._ttls = dict(ttls)
        # Bumped by every drop and clear: an answer read from the LMS before one is not
        # cached after it (request threads and the invalidation listeners run concurrently).
        self._generation = 0
        self.shared = shared
        if shared is not None:
            shared.listen(self._drop_local)

    def _untag(self, full_key: tuple[str, Hashable]) -> None:
        for tag in self._key_tags.pop(full_key, ()):
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(full_key)
                if not keys:
                    del self._tags[tag]

    def fresh(self, kind: str, key: Hashable) -> Cached | None:
        """The entry if it is within its TTL: this worker's, else the shared level's."""
        with self._lock:
            entry = self._fresh[kind].get(key)
        if entry is not None or self.shared is None:
            return entry
        found = self.shared.get(kind, key)
        if found is None:
            return None
        value, fetched_at, tags = found
        if fetched_at + self._ttls[kind] <= _timer():  # Redis's own expiry runs on its clock
            return None
        return self._store(kind, key, Cached(value, fetched_at), tags)

    def last_good(self, kind: str, key: Hashable, max_age: float) -> Cached | None:
        """The last good entry whatever its TTL, if not older than ``max_age`` seconds."""
        with self._lock:
            entry = self._good.get((kind, key))
        if entry is None or entry.age() > max_age:
            return None
        return entry

    def generation(self) -> int:
        """Take it before reading the LMS and give it to :meth:`put`."""
        with self._lock:
            return self._generation

    def put(self, kind: str, key: Hashable, value: Any, tags: Iterable[str] = (),
            since: int | None = None) -> Cached:
        """Store an answer just read from the LMS, here and in the shared level; not stored
        when something was dropped since ``since`` (:meth:`generation` before the read): the
        answer may predate the change that dropped it."""
        tags = tuple(dict.fromkeys(tags))
        if since is not None:
            with self._lock:
                if since != self._generation:
                    return Cached(value, _timer())
        entry = self._store(kind, key, Cached(value, _timer()), tags)
        if self.shared is not None:
            self.shared.put(kind, key, value, entry.fetched_at, tags)
        return entry

    def _store(self, kind: str, key: Hashable, entry: Cached, tags: tuple[str, ...]) -> Cached:
        full_key = (kind, key)
        with self._lock:
            self._untag(full_key)
            self._fresh[kind][key] = entry
            self._good[full_key] = entry
            self._key_tags[full_key] = tags
            for tag in tags:
                self._tags.setdefault(tag, set()).add(full_key)
        return entry

    def drop_tag(self, tag: str) -> int:
        """Remove every entry tagged ``tag`` (fresh and last-known-good), here, in the shared
        level and in every other worker listening to it; returns how many were here."""
        dropped = self._drop_local(tag)
        if self.shared is not None:
            self.shared.drop_tag(tag)
        return dropped

    def _drop_local(self, tag: str) -> int:
        with self._lock:
            self._generation += 1
            keys = list(self._tags.get(tag, ()))
            for full_key in keys:
                kind, key = full_key
                self._fresh[kind].pop(key, None)
                self._good.pop(full_key, None)
                self._untag(full_key)
            return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            for store in self._fresh.values():
                store.clear()
            self._good.clear()
            self._tags.clear()
            self._key_tags.clear()
        if self.shared is not None:
            self.shared.clear()

    def size(self) -> dict[str, int]:
        with self._lock:
            sizes = {kind: len(store) for kind, store in self._fresh.items()}
            sizes["last_good"] = len(self._good)
            return sizes
