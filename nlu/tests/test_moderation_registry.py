"""The process's matcher: built from the active words, rebuilt when another process edits them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from nlu.models import SensitiveWord, SensitiveWordAction
from nlu.moderation import registry
from nlu.moderation.matcher import EMPTY, Action
from nlu.moderation.normalize import normalize_word
from nlu.moderation.services import sensitive_word_create, sensitive_word_update
from testkit.processes import ROOT, child_env

# The registry may read rows from executor threads and other processes: committed data only.
pytestmark = pytest.mark.django_db(transaction=True)

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis)")


@pytest.fixture(autouse=True)
def _fresh_registry(settings):  # type: ignore[no-untyped-def]
    """Each test starts with no matcher, checks on every call and no version key."""
    settings.MODERATION_CHECK_SECONDS = 0
    settings.MODERATION_RESYNC_SECONDS = 3600
    registry.reset()
    cache.delete(registry.VERSION_KEY)
    yield
    registry.reset()
    cache.delete(registry.VERSION_KEY)


def unique_word() -> str:
    """A made-up word no list holds (Redis may be shared with earlier runs)."""
    return "zq" + uuid.uuid4().hex[:8]


def add_behind_the_registry(word: str, **fields) -> SensitiveWord:
    """A row written as another process would: no word to this process, no version bump."""
    return SensitiveWord.objects.create(
        word=word, normalised=normalize_word(word), category="abuse", **fields
    )


def masked(matcher, word: str) -> bool:
    verdict = matcher.apply(f"say {word} now")
    return word not in verdict.text and bool(verdict.hits)


# --- building -------------------------------------------------------------------------------------


def test_the_matcher_holds_the_active_words_only():
    # given an active and an inactive word
    active, inactive = unique_word(), unique_word()
    sensitive_word_create(word=active, category="abuse", action="block")
    sensitive_word_create(word=inactive, category="abuse", is_active=False)

    # when
    matcher = registry.current_matcher()

    # then
    verdict = matcher.apply(f"{active} and {inactive}")
    assert [(h.category, h.action) for h in verdict.hits] == [("abuse", Action.BLOCK)]
    assert verdict.blocked
    assert inactive in verdict.text


def test_no_words_gives_a_matcher_that_changes_nothing():
    matcher = registry.current_matcher()
    assert matcher.apply("hello there").text == "hello there"
    assert matcher.apply("hello there").hits == ()


def test_the_actions_match_the_matcher_actions():
    assert {a.value for a in Action} == set(SensitiveWordAction.values)


# --- the version key ------------------------------------------------------------------------------


def test_words_changed_creates_a_missing_key_then_increments_it():
    # given no key at all (first start, eviction, a flushed Redis)
    assert cache.get(registry.VERSION_KEY) is None

    # when
    first = registry.words_changed()
    second = registry.words_changed()

    # then
    assert first is not None and first > 0
    assert second == first + 1
    assert cache.get(registry.VERSION_KEY) == second


@needs_redis
def test_words_changed_on_redis_with_and_without_the_key(settings):
    # given the Redis cache, with the key missing
    from django.core.cache import caches

    redis_cache = caches["default"]
    assert "redis" in type(redis_cache).__module__
    redis_cache.delete(registry.VERSION_KEY)

    # when
    first = registry.words_changed()
    second = registry.words_changed()

    # then the value lives in Redis, as an integer Redis can increment
    assert second == first + 1
    assert redis_cache.get(registry.VERSION_KEY) == second
    assert registry._read_version() == second


def test_a_write_bumps_the_version_once_it_commits():
    # given
    before = registry.words_changed()

    # when a word is added, then edited
    row = sensitive_word_create(word=unique_word(), category="ads")
    assert cache.get(registry.VERSION_KEY) == before + 1
    sensitive_word_update(sensitive_word=row, action="block")

    # then
    assert cache.get(registry.VERSION_KEY) == before + 2


def test_a_rolled_back_write_bumps_nothing():
    # given
    before = registry.words_changed()

    # when a word is added in a transaction that rolls back
    with transaction.atomic():
        sensitive_word_create(word=unique_word(), category="ads")
        transaction.set_rollback(True)

    # then
    assert cache.get(registry.VERSION_KEY) == before


def test_an_edit_elsewhere_is_seen_after_the_check_interval(settings, monkeypatch):
    # given a shared cache (as with Redis) and a matcher checked at most every 0.3 s
    monkeypatch.setattr(registry, "_cache_is_shared", lambda: True)
    settings.MODERATION_CHECK_SECONDS = 0.3
    word = unique_word()
    assert not masked(registry.current_matcher(), word)
    reads = []
    read_version = registry._read_version
    monkeypatch.setattr(registry, "_read_version", lambda: reads.append(1) or read_version())

    # when another process adds a word and bumps the version
    add_behind_the_registry(word)
    cache.incr(registry.VERSION_KEY)

    # then this process goes on with its matcher until the interval is over, with no I/O
    assert not masked(registry.current_matcher(), word)
    assert reads == []
    time.sleep(0.35)
    assert masked(registry.current_matcher(), word)
    assert reads == [1]


def test_without_a_bump_a_shared_cache_waits_for_the_resync(settings, monkeypatch):
    # given a shared cache and a matcher
    monkeypatch.setattr(registry, "_cache_is_shared", lambda: True)
    settings.MODERATION_RESYNC_SECONDS = 0.3
    word = unique_word()
    assert not masked(registry.current_matcher(), word)

    # when a word is written but the bump is lost (the cache was down for the writer)
    add_behind_the_registry(word)

    # then the key says nothing changed, until the periodic comparison with the table
    assert not masked(registry.current_matcher(), word)
    time.sleep(0.35)
    assert masked(registry.current_matcher(), word)


def test_an_unchanged_version_does_not_rebuild(monkeypatch):
    # given a built matcher on a shared cache
    monkeypatch.setattr(registry, "_cache_is_shared", lambda: True)
    first = registry.current_matcher()

    # when nothing changed
    again = registry.current_matcher()

    # then it is the same object
    assert again is first


def test_a_per_process_cache_compares_the_table(monkeypatch):
    # given the embedded default: a cache no other process sees (LocMemCache)
    monkeypatch.setattr(registry, "_cache_is_shared", lambda: False)
    word = unique_word()
    assert not masked(registry.current_matcher(), word)

    # when another process adds a word (its bump lands in its own memory)
    row = add_behind_the_registry(word)

    # then the next check sees it in the table; a deactivation too
    assert masked(registry.current_matcher(), word)
    SensitiveWord.objects.filter(pk=row.pk).update(is_active=False, updated_at=timezone.now())
    assert not masked(registry.current_matcher(), word)


def test_the_default_cache_is_shared_only_with_redis():
    assert registry._cache_is_shared() is bool(settings.REDIS_URL)


# --- failures -------------------------------------------------------------------------------------


class DownCache:
    """A cache whose every call fails, as Redis does while it is unreachable."""

    def __getattr__(self, name: str):
        def down(*args, **kwargs):
            raise ConnectionError("cache down")

        return down


def test_a_cache_outage_falls_back_to_the_database(monkeypatch, caplog):
    # given a matcher, then a shared cache that fails every call
    monkeypatch.setattr(registry, "_cache_is_shared", lambda: True)
    assert not masked(registry.current_matcher(), "anything")
    monkeypatch.setattr(registry, "cache", DownCache())
    word = unique_word()

    # when a word is added (the write succeeds; its bump cannot be written)
    with caplog.at_level(logging.WARNING):
        sensitive_word_create(word=word, category="abuse")

        # then callers still get a matcher, and it comes from the table
        assert masked(registry.current_matcher(), word)
    assert "moderation version key not bumped" in caplog.text
    assert "moderation version key unreadable" in caplog.text


def test_a_rebuild_failure_keeps_the_old_matcher(settings, monkeypatch, caplog):
    # given a matcher with one word
    old_word = unique_word()
    sensitive_word_create(word=old_word, category="abuse")
    old = registry.current_matcher()
    assert masked(old, old_word)

    # when a word is added and building the new matcher fails
    real_matcher = registry.Matcher

    def broken(*args, **kwargs):
        raise RuntimeError("matcher bug")

    monkeypatch.setattr(registry, "Matcher", broken)
    new_word = unique_word()
    sensitive_word_create(word=new_word, category="abuse")

    # then the old matcher goes on serving, and the failure is logged
    with caplog.at_level(logging.ERROR):
        assert registry.current_matcher() is old
    assert "moderation matcher not rebuilt" in caplog.text

    # and once building works again, the next check (after a back-off) builds
    monkeypatch.setattr(registry, "Matcher", real_matcher)
    registry._state.due_at = 0
    assert masked(registry.current_matcher(), new_word)


def test_a_first_build_failure_gives_the_empty_matcher(monkeypatch):
    # given building fails from the start
    def broken(*args, **kwargs):
        raise RuntimeError("matcher bug")

    monkeypatch.setattr(registry, "Matcher", broken)

    # when / then callers are not broken: nothing is moderated until a build succeeds
    assert registry.current_matcher() is EMPTY


async def test_the_async_variant_answers_without_a_thread_hop_between_checks(settings, monkeypatch):
    # given a matcher built, and a long check interval
    settings.MODERATION_CHECK_SECONDS = 3600
    word = unique_word()
    await database_sync_to_async(sensitive_word_create)(word=word, category="abuse")
    first = await registry.acurrent_matcher()
    assert masked(first, word)

    # when nothing is due, the event loop never leaves for a thread
    def no_hop(*args, **kwargs):
        raise AssertionError("hopped to a thread")

    monkeypatch.setattr(registry, "sync_to_async", no_hop)

    # then
    assert await registry.acurrent_matcher() is first


# --- two processes --------------------------------------------------------------------------------

CHILD = """
import json, sys
import django
django.setup()
from nlu.moderation.registry import current_matcher
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    verdict = current_matcher().apply(line.rstrip("\\n"))
    hits = [[h.category, str(h.action)] for h in verdict.hits]
    print(json.dumps({"text": verdict.text, "hits": hits}), flush=True)
"""


class Child:
    """A second Python process on the same database (and Redis), asked for verdicts over a pipe."""

    def __init__(self, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=ROOT,
            env=child_env(**env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert json.loads(self._line()) == {"ready": True}

    def verdict(self, text: str) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return json.loads(self._line())

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the child process died (exit {self.process.poll()})"
        return line

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def test_another_process_sees_an_added_word_within_seconds():
    # given a second process, checking every half second (Redis's key when REDIS_URL is set,
    # the table otherwise), that has nothing to mask yet
    word = unique_word()
    child = Child(MODERATION_CHECK_SECONDS="0.5")
    try:
        before = child.verdict(f"you {word}")
        assert before == {"text": f"you {word}", "hits": []}

        # when this process adds the word
        sensitive_word_create(word=word, category="abuse", action="mask")
        added_at = time.monotonic()

        # then the other process masks it within a few seconds, without a restart
        after = before
        while time.monotonic() - added_at < 15 and not after["hits"]:
            time.sleep(0.1)
            after = child.verdict(f"you {word}")
        seen_after = time.monotonic() - added_at
        assert after["hits"] == [["abuse", "mask"]]
        assert word not in after["text"]
        assert seen_after < 3

        # and a change of action reaches it the same way
        row = SensitiveWord.objects.get(word=word)
        sensitive_word_update(sensitive_word=row, action=SensitiveWordAction.FLAG)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and after["hits"] != [["abuse", "flag"]]:
            time.sleep(0.1)
            after = child.verdict(f"you {word}")
        assert after == {"text": f"you {word}", "hits": [["abuse", "flag"]]}
    finally:
        child.stop()
