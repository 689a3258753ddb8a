"""This process's sensitive-word matcher: built from the active words, rebuilt when they change.

Every web process and worker holds one `Matcher`. At most every MODERATION_CHECK_SECONDS a caller
looks at the cache key `moderation:version`, which every write bumps after it commits
(`words_changed`); only when the value changed does the process reload the active words and
build a new matcher. Between checks `current_matcher()` does no I/O at all;
`acurrent_matcher()` is the event-loop variant that hops to a thread only when a check is due.

The database stands in for the key where the key cannot be trusted to cross processes: with a
per-process cache (LocMemCache, the embedded default) and while the cache is down, a check
compares a fingerprint of the table (row count, highest id, latest update) instead. Every
MODERATION_RESYNC_SECONDS it does so anyway, so a bump lost in a cache outage is caught too.

A build that fails keeps the previous matcher (logged; retried with a growing delay). A process
whose first build fails moderates nothing (`EMPTY`) until a build succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db.models import Count, Max

from chatsite.db import own_connection
from nlu.moderation.matcher import EMPTY, Action, Entry, Matcher

logger = logging.getLogger(__name__)

VERSION_KEY = "moderation:version"
# A failing build is retried after the check interval, doubled per failure up to this.
MAX_RETRY_SECONDS = 60.0

Fingerprint = tuple[Any, ...]


class _State:
    """Per-process state behind one lock; readers take the matcher without locking."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.matcher: Matcher | None = None
        self.due_at = 0.0  # monotonic time of the next check; 0: check at the next call
        self.seen_version: int | None = None  # the key's value the matcher was built at
        self.fingerprint: Fingerprint | None = None  # the table's, when the matcher was built
        self.resync_at = 0.0  # monotonic time of the next fingerprint comparison
        self.failures = 0  # consecutive failed builds
        self.must_build = True  # build at the next check, whatever the key says

    def fresh(self) -> bool:
        return time.monotonic() < self.due_at


_state = _State()


def current_matcher() -> Matcher:
    """The matcher of the active words (blocking I/O only when a check is due)."""
    state = _state
    if state.fresh():
        return _or_empty(state.matcher)
    # Another thread is checking or building: answer with the current matcher meanwhile.
    if not state.lock.acquire(blocking=state.matcher is None):
        return _or_empty(state.matcher)
    try:
        if not state.fresh():
            _check(state)
        return _or_empty(state.matcher)
    finally:
        state.lock.release()


async def acurrent_matcher() -> Matcher:
    """`current_matcher()` for the event loop: no thread hop unless a check is due."""
    state = _state
    if state.fresh():
        return _or_empty(state.matcher)
    return await sync_to_async(current_matcher, thread_sensitive=False)()


def loaded_matcher() -> Matcher | None:
    """What this process holds now, without any check or I/O (probes, logs)."""
    return _state.matcher


def words_changed() -> int | None:
    """Tell every process that the words changed (call after the write commits).

    Returns the new version, or None when the cache could not be written (the other processes
    then see the change at their next database resync). This process rebuilds at its next call.
    """
    version: int | None = None
    try:
        version = _bump()
    except Exception:  # a cache outage must not fail the write that already committed
        logger.warning("moderation version key not bumped", exc_info=True)
    _state.must_build = True
    _state.due_at = 0.0
    return version


def reset() -> None:
    """Forget the matcher and every check (tests)."""
    global _state
    _state = _State()


def build_matcher(*, version: int = 0) -> Matcher:
    """A matcher of the active words, straight from the database (the admin's test box)."""
    from nlu.models import SensitiveWord

    rows = SensitiveWord.objects.filter(is_active=True).values_list("word", "action", "category")
    return Matcher(
        (
            Entry(word=word, action=Action(action), category=category)
            for word, action, category in rows
        ),
        version=version,
    )


def _or_empty(matcher: Matcher | None) -> Matcher:
    return EMPTY if matcher is None else matcher


def _check(state: _State) -> None:
    """Compare the version key (or the table) with what the matcher was built from."""
    now = time.monotonic()
    version = _read_version()
    use_table = version is None or not _cache_is_shared() or now >= state.resync_at
    fingerprint: Fingerprint | None = None
    if use_table:
        try:
            with own_connection():
                fingerprint = _fingerprint()
        except Exception:  # the database is down too: keep the matcher, look again later
            logger.warning("moderation words not checked: database unavailable", exc_info=True)
            _failed(state, now)
            return
    changed = (
        state.must_build
        or state.matcher is None
        or (version is not None and _cache_is_shared() and version != state.seen_version)
        or (fingerprint is not None and fingerprint != state.fingerprint)
    )
    if changed:
        _build(state, version, now)
        return
    if version is not None:
        state.seen_version = version
    if fingerprint is not None:
        state.resync_at = now + settings.MODERATION_RESYNC_SECONDS
    state.due_at = now + settings.MODERATION_CHECK_SECONDS


def _build(state: _State, version: int | None, now: float) -> None:
    from nlu.models import SensitiveWord

    started = time.monotonic()
    try:
        with own_connection():
            # The fingerprint first: a write that commits between the two reads makes the next
            # check build again, never keeps a matcher that misses it.
            fingerprint = _fingerprint()
            rows = list(
                SensitiveWord.objects.filter(is_active=True).values_list(
                    "word", "action", "category"
                )
            )
        queried = time.monotonic()
        matcher = Matcher(
            [Entry(word=w, action=Action(a), category=c) for w, a, c in rows],
            version=version if version is not None else _version_of(state.matcher),
        )
    except Exception:  # a bad row or a database error must not take moderation down
        logger.exception(
            "moderation matcher not rebuilt: keeping the previous one",
            extra={"moderation_version": version},
        )
        _failed(state, now)
        return
    state.matcher = matcher
    state.fingerprint = fingerprint
    state.seen_version = version
    state.must_build = False
    state.failures = 0
    state.resync_at = now + settings.MODERATION_RESYNC_SECONDS
    state.due_at = now + settings.MODERATION_CHECK_SECONDS
    logger.info(
        "moderation matcher built",
        extra={
            "moderation_version": matcher.version,
            "words": len(rows),
            "query_ms": int((queried - started) * 1000),
            "build_ms": int((time.monotonic() - queried) * 1000),
        },
    )


def _failed(state: _State, now: float) -> None:
    state.failures += 1
    interval = settings.MODERATION_CHECK_SECONDS
    delay = min(max(interval, 0.5) * 2 ** (state.failures - 1), MAX_RETRY_SECONDS)
    state.due_at = now + delay


def _version_of(matcher: Matcher | None) -> int:
    return matcher.version if matcher is not None else 0


def _read_version() -> int | None:
    """The version key's value, written first if missing; None when the cache is unusable."""
    try:
        value = cache.get(VERSION_KEY)
        if value is None:
            # Missing (first start, eviction, flush): a new number no process has seen, so each
            # rebuilds once. add, not set: a racing bump keeps its own value.
            cache.add(VERSION_KEY, _fresh_version(), timeout=None)
            value = cache.get(VERSION_KEY)
        return None if value is None else int(value)
    except Exception:  # an outage must not stop moderation: the database decides meanwhile
        logger.warning("moderation version key unreadable", exc_info=True)
        return None


def _bump() -> int:
    try:
        return int(cache.incr(VERSION_KEY))
    except ValueError:  # missing: both LocMemCache and RedisCache raise this
        version = _fresh_version()
        if cache.add(VERSION_KEY, version, timeout=None):
            return version
        return int(cache.incr(VERSION_KEY))  # another process created it meanwhile


def _fresh_version() -> int:
    # Milliseconds since the epoch: never a value an earlier key had, unless the clock goes back.
    return int(time.time() * 1000)


def _cache_is_shared() -> bool:
    """Whether the default cache reaches other processes (a per-process one cannot carry news)."""
    return not isinstance(caches["default"], LocMemCache | DummyCache)


def _fingerprint() -> Fingerprint:
    """What changes with any write to the table: insert (highest id), update, delete (count)."""
    from nlu.models import SensitiveWord

    values = SensitiveWord.objects.aggregate(
        count=Count("pk"), last_id=Max("pk"), last_change=Max("updated_at")
    )
    return (values["count"], values["last_id"], values["last_change"])
