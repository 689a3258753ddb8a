"""The serving intent model of this process: loaded from the database, swapped when promoted.

Every web process and worker holds at most one `IntentModel`, the `NluModel` with
`is_serving=True`. At most every NLU_MODEL_CHECK_SECONDS a caller looks at the cache key
`nlu:serving-version`, which the promote service sets through `serving_version_changed`; only when
it changed (or is missing) does the process ask the database which model serves, and it loads
the artifact only when that differs from what it holds. The bytes are kept under
VAR_DIR/nlu/v<pk>-<sha>.onnx, so a restart reads a local file instead of the database blob.

Between checks `serving_model()` does no I/O at all; `aserving_model()` is the event-loop
variant that hops to a thread only when a check is due.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from chatsite.db import own_connection
from nlu.classifier.artifact import IntentModel

logger = logging.getLogger(__name__)

VERSION_KEY = "nlu:serving-version"
WARM_UP_TEXT = "hello, i would like to order a meal"


@dataclass(frozen=True)
class LoadedModel:
    """The model this process serves: which `NluModel` row, which bytes, and its runtime."""

    nlu_model_id: int
    sha256: str
    model: IntentModel

    @property
    def version(self) -> int:
        return self.nlu_model_id


@dataclass(frozen=True)
class _Row:
    pk: int
    sha256: str
    labels: list[str]


class _Registry:
    """Per-process state behind one lock; readers take a snapshot without locking."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded: LoadedModel | None = None
        self.checked_at: float | None = None  # monotonic time of the last check
        self.seen_marker: object = None  # the cache key's value at the last check
        self.failed: tuple[int, str] | None = None  # an artifact that would not load
        self.must_query = True  # ask the database at the next check, whatever the marker says

    def fresh(self) -> bool:
        checked = self.checked_at
        return checked is not None and time.monotonic() - checked < settings.NLU_MODEL_CHECK_SECONDS


_registry = _Registry()


def serving_model() -> LoadedModel | None:
    """The model this process serves, or None when no model is promoted (blocking I/O)."""
    registry = _registry
    if registry.fresh():
        return registry.loaded
    # Someone else is checking or loading: keep answering with the current model meanwhile.
    if not registry.lock.acquire(blocking=registry.loaded is None):
        return registry.loaded
    try:
        if not registry.fresh():
            _check(registry)
        return registry.loaded
    finally:
        registry.lock.release()


async def aserving_model() -> LoadedModel | None:
    """`serving_model()` for the event loop: no thread hop unless a check is due."""
    if _registry.fresh():
        return _registry.loaded
    return await sync_to_async(serving_model, thread_sensitive=False)()


def current_model() -> LoadedModel | None:
    """What this process holds now, without any check or I/O (probes, logs)."""
    return _registry.loaded


def serving_version_changed(version: int | None) -> None:
    """Tell every process that the serving model changed (call after the promotion commits).

    `version` is the new serving NluModel's pk; None or 0 when no model serves any more. This
    process rechecks at its next call; the others within NLU_MODEL_CHECK_SECONDS.
    """
    cache.set(VERSION_KEY, int(version or 0), timeout=None)
    _registry.must_query = True
    _registry.checked_at = None


def reset() -> None:
    """Forget the loaded model and every check (tests)."""
    global _registry
    _registry = _Registry()
    _warm_up.reset()


def _check(registry: _Registry) -> None:
    """Look at the version marker; reload from the database when it changed."""
    try:
        marker = cache.get(VERSION_KEY)
    except Exception:  # a cache outage must not stop serving: fall back to the database
        logger.warning("nlu serving-version key unreadable", exc_info=True)
        marker = None
    if marker is None or marker != registry.seen_marker or registry.must_query:
        row = _serving_row()
        registry.must_query = False
        if marker is None:
            # add, not set: a promotion racing with this check keeps its own, newer value.
            _cache_add(VERSION_KEY, row.pk if row else 0)
        _apply(registry, row)
    registry.seen_marker = marker
    registry.checked_at = time.monotonic()


def _apply(registry: _Registry, row: _Row | None) -> None:
    if row is None:
        if registry.loaded is not None:
            logger.info(
                "nlu model unloaded: none serves", extra={"nlu_model": registry.loaded.version}
            )
        registry.loaded = None
        return
    current = registry.loaded
    if current is not None and (current.nlu_model_id, current.sha256) == (row.pk, row.sha256):
        return
    if registry.failed == (row.pk, row.sha256):
        return  # logged once already; a new promotion or a restart tries again
    started = time.monotonic()
    try:
        onnx_bytes = _artifact_bytes(row)
        model = IntentModel(onnx_bytes, row.labels)
    except Exception:  # a broken artifact must not take the process down: keep the old model
        logger.exception("nlu model failed to load", extra={"nlu_model": row.pk})
        registry.failed = (row.pk, row.sha256)
        return
    registry.loaded = LoadedModel(nlu_model_id=row.pk, sha256=row.sha256, model=model)
    logger.info(
        "nlu model loaded",
        extra={"nlu_model": row.pk, "ms": int((time.monotonic() - started) * 1000)},
    )


def _serving_row() -> _Row | None:
    from nlu.models import NluModel

    with own_connection():
        values = (
            NluModel.objects.filter(is_serving=True)
            .values_list("pk", "artifact_sha256", "labels")
            .first()
        )
    if values is None:
        return None
    pk, sha, labels = values
    return _Row(pk=pk, sha256=sha or "", labels=list(labels or []))


def _artifact_bytes(row: _Row) -> bytes:
    """The artifact from the local copy when it matches, else from the database (then copied)."""
    path = local_path(row.pk, row.sha256)
    if row.sha256 and path.is_file():
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == row.sha256:
            return data
    from nlu.models import NluModel

    with own_connection():
        blob = NluModel.objects.filter(pk=row.pk).values_list("artifact", flat=True).first()
    if not blob:
        raise ValueError(f"NLU model v{row.pk} has no artifact")
    data = bytes(blob)
    if row.sha256 and hashlib.sha256(data).hexdigest() != row.sha256:
        raise ValueError(f"NLU model v{row.pk}: artifact does not match its sha256")
    if row.sha256:
        _write_copy(path, data)
    return data


def local_path(pk: int, sha256: str) -> Path:
    """Where this host keeps its copy of a model's artifact."""
    return Path(settings.VAR_DIR) / "nlu" / f"v{pk}-{sha256[:12]}.onnx"


def _write_copy(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: another process never reads half a file
    except OSError:
        logger.warning("nlu artifact copy not written", extra={"path": str(path)}, exc_info=True)


def _cache_add(key: str, value: int) -> None:
    try:
        cache.add(key, value, timeout=None)
    except Exception:
        logger.warning("nlu serving-version key not written", exc_info=True)


# --- Warm-up ------------------------------------------------------------------------------------


def warm_up() -> bool:
    """Load the serving model and run one prediction (and the encoder); True if a model serves."""
    _registry.must_query = True  # look now, whatever the last check said
    _registry.checked_at = None
    loaded = serving_model()
    if loaded is None:
        return False
    loaded.model.predict([WARM_UP_TEXT])
    return True


class _WarmUp:
    """One background warm-up per process at a time; its future says how it went."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.future: concurrent.futures.Future[bool] | None = None

    def start(self) -> concurrent.futures.Future[bool]:
        with self.lock:
            future = self.future
            if future is None or (future.done() and future.exception() is not None):
                future = concurrent.futures.Future()
                future.set_running_or_notify_cancel()  # nobody can cancel it from outside
                self.future = future
                threading.Thread(
                    target=_warm_up_into, args=(future,), name="nlu-warm-up", daemon=True
                ).start()
            return future

    def reset(self) -> None:
        with self.lock:
            self.future = None


def _warm_up_into(future: concurrent.futures.Future[bool]) -> None:
    started = time.monotonic()
    try:
        serving = warm_up()
    except BaseException as exc:  # reported through the future and the log, never lost
        logger.exception("nlu warm-up failed")
        future.set_exception(exc)
        return
    loaded = current_model()
    logger.info(
        "nlu warm-up finished",
        extra={
            "nlu_model": loaded.version if loaded else None,
            "ms": int((time.monotonic() - started) * 1000),
        },
    )
    future.set_result(serving)


_warm_up = _WarmUp()


def start_warm_up() -> concurrent.futures.Future[bool]:
    """Warm up in a background thread (once; again only after a failure); its future."""
    return _warm_up.start()


def warm_up_future() -> concurrent.futures.Future[bool] | None:
    """This process's warm-up, or None when none was started."""
    return _warm_up.future
