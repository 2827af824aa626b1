"""The shared level of the context cache: Redis, under each worker's in-process cache, so that
N replicas × M workers ask the LMS once per answer and TTL, not N × M times.

Off unless ``IDP_CONTEXT_REDIS_URL`` is set; the embedded default stays in-process only.

- A fresh answer read from the LMS is written to Redis with its kind's TTL, together with the
  time it was read (so the answer's age is the same wherever it is served) and its tags.
- Each tag (``student:42``, ``mentor:7``, ``batch:3``) is a Redis set of the keys that mention
  it. Dropping a tag deletes those keys and publishes the tag on one channel; every worker of
  every replica listens on that channel and drops the tag from its in-process cache too.
- Values are JSON (never pickle: whoever can write to Redis must not be able to run code in
  the bridge); a dict with non-string keys travels as a tagged list of pairs.
- Redis unreachable or failing: the level switches itself off for ``RETRY_SECONDS`` with one
  warning line, and reads go to the in-process cache and the LMS as without Redis; never an
  error for the caller.

Invalidation is best effort across the network: a tag dropped while Redis is unreachable does
not reach the other workers, whose copies then live until their TTL (at most the profile,
metrics or batch TTL). Authorization never depends on these caches: who a viewer is and
whether they are active is asked of the LMS on every request (``ContextService.viewer``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

log = logging.getLogger(__name__)

RETRY_SECONDS = 30
_MAP = "\x00map"
KINDS = frozenset({"owner", "profile", "mentor", "mentor_students", "metrics", "performance",
                   "batch"})  # "viewer" holds Person objects and is never shared


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {_MAP: [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _MAP in value and len(value) == 1:
            return {_freeze(_decode(k)): _decode(v) for k, v in value[_MAP]}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _freeze(key: Any) -> Hashable:
    return tuple(key) if isinstance(key, list) else key


class SharedLevel:
    """Redis operations of the context cache; every method swallows Redis errors (and
    reports them once) so that callers see a miss, never an exception."""

    def __init__(self, url: str, ttls: dict[str, int], prefix: str = "idp:context"):
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                           health_check_interval=30)
        self._errors = (redis.RedisError, OSError)
        self._ttls = ttls
        self._max_ttl = max(ttls.values())
        self._prefix = prefix
        self.channel = f"{prefix}:invalidate"
        self._down_until = 0.0
        self._lock = threading.RLock()
        self._on_tag: Callable[[str], None] | None = None
        self._listening_pid: int | None = None
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- availability ------------------------------------------------------------------

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._available():
                log.warning("context cache: Redis unreachable (%s: %s); answering from the "
                            "in-process cache and the LMS for %d s", type(exc).__name__,
                            str(exc)[:200], RETRY_SECONDS)
            self._down_until = time.monotonic() + RETRY_SECONDS

    # -- keys --------------------------------------------------------------------------

    def _key(self, kind: str, key: Hashable) -> str:
        return f"{self._prefix}:v1:{kind}:{json.dumps(_encode(key), separators=(',', ':'))}"

    def _tag_key(self, tag: str) -> str:
        return f"{self._prefix}:tag:{tag}"

    # -- reads and writes --------------------------------------------------------------

    def get(self, kind: str, key: Hashable) -> tuple[Any, float, tuple[str, ...]] | None:
        """(value, fetched_at, tags) of a fresh shared entry, or None."""
        self._ensure_listening()
        if kind not in KINDS or not self._available():
            return None
        try:
            raw = self._redis.get(self._key(kind, key))
        except self._errors as exc:
            self._failed(exc)
            return None
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            return _decode(entry["v"]), float(entry["t"]), tuple(entry["g"])
        except (ValueError, KeyError, TypeError):
            log.warning("context cache: unreadable shared entry for %s ignored", kind)
            return None

    def put(self, kind: str, key: Hashable, value: Any, fetched_at: float,
            tags: Iterable[str]) -> None:
        self._ensure_listening()
        if kind not in KINDS or not self._available():
            return
        tags = tuple(tags)
        try:
            body = json.dumps({"v": _encode(value), "t": fetched_at, "g": tags},
                              separators=(",", ":"))
        except (TypeError, ValueError):
            return  # not JSON: stays in this worker's cache only
        name, ttl = self._key(kind, key), self._ttls[kind]
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(name, body, ex=ttl)
            for tag in tags:  # a tag set outlives its keys; a member that expired is harmless
                pipe.sadd(self._tag_key(tag), name)
                pipe.expire(self._tag_key(tag), self._max_ttl)
            pipe.execute()
        except self._errors as exc:
            self._failed(exc)

    def drop_tag(self, tag: str) -> None:
        """Delete every shared entry tagged ``tag`` and tell every worker to drop it."""
        self._ensure_listening()
        if not self._available():
            return
        try:
            names = self._redis.smembers(self._tag_key(tag))
            pipe = self._redis.pipeline(transaction=True)
            if names:
                pipe.delete(*names)
            pipe.delete(self._tag_key(tag))
            pipe.publish(self.channel, tag)
            pipe.execute()
        except self._errors as exc:
            self._failed(exc)

    def clear(self) -> None:
        """Delete this prefix's keys (tests and ``flask context clear-cache``)."""
        try:
            names = list(self._redis.scan_iter(f"{self._prefix}:*", count=1000))
            if names:
                self._redis.delete(*names)
        except self._errors as exc:
            self._failed(exc)

    # -- invalidations from other workers ----------------------------------------------

    def listen(self, on_tag: Callable[[str], None]) -> None:
        """Call ``on_tag(tag)`` for every published drop (this worker's own included: dropping
        twice is harmless), from a daemon thread started on first use in each process (a
        thread does not survive the fork of a preloading server)."""
        self._on_tag = on_tag

    def _ensure_listening(self) -> None:
        """Subscribe (and wait for Redis to confirm) before this process first reads or
        writes the shared level, so no drop published after that is missed."""
        if self._on_tag is None or self._listening_pid == os.getpid():
            return
        with self._lock:
            if self._listening_pid == os.getpid() or not self._available():
                return
            try:
                pubsub = self._subscribe()
            except self._errors as exc:
                self._failed(exc)
                return
            self._listening_pid = os.getpid()
            self._stopping = threading.Event()
            self._listener = threading.Thread(target=self._listen, args=(pubsub,),
                                              name="context-cache-invalidations", daemon=True)
            self._listener.start()

    def _subscribe(self):
        pubsub = self._redis.pubsub()
        pubsub.subscribe(self.channel)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.2)
            if message and message.get("type") == "subscribe":
                return pubsub
        pubsub.close()
        raise OSError("no subscription confirmation from Redis within 1 s")

    def _listen(self, pubsub) -> None:
        """Calls ``on_tag`` for each published tag; after a failure, resubscribes (whatever
        was published meanwhile is lost: see the module docstring)."""
        while not self._stopping.is_set():
            try:
                if pubsub is None:
                    pubsub = self._subscribe()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        data = message["data"]
                        self._on_tag(data.decode() if isinstance(data, bytes) else str(data))
            except self._errors as exc:
                self._failed(exc)
                self._stopping.wait(5)
            finally:
                if pubsub is not None:
                    pubsub.close()
                pubsub = None

    def close(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.join(timeout=3)
        self._redis.close()
