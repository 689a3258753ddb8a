"""Micro-batches for the online path: many concurrent callers, one inference per batch.

`await get_batcher().predict(normalized_text, model)` queues the text. A batch closes when it
holds NLU_BATCH_MAX texts, when its oldest text has waited NLU_BATCH_WAIT_MS, or as soon as a turn
of the event loop brings no new text (a lone caller never waits for company that is not coming).
It runs as one `IntentModel.predict` in the process's single inference thread (onnxruntime
releases the GIL, so the event loop keeps running). While a batch runs, the next one fills up:
under load batches grow by themselves.

One batcher per event loop (like conversations.streams' hub); the inference thread is shared by
the whole process, so two loops never run two inferences at once on 2 cores.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings

from nlu.classifier.artifact import IntentModel, Prediction

# One thread: inference is CPU-bound, and a second one would only split the same cores.
_INFERENCE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-inference")


@dataclass
class _Item:
    text: str
    model: IntentModel
    future: asyncio.Future[Prediction]
    queued_at: float


@dataclass
class BatchStats:
    """What a batcher did so far (benchmarks, tests)."""

    batches: int = 0
    texts: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)

    def record(self, size: int) -> None:
        self.batches += 1
        self.texts += size
        self.largest = max(self.largest, size)
        if len(self.sizes) < 10_000:
            self.sizes.append(size)


class MicroBatcher:
    """Collects texts from concurrent callers into batches; one batch runs at a time."""

    def __init__(self, *, max_batch: int, wait_ms: float) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self.wait = max(wait_ms, 0.0) / 1000
        self.stats = BatchStats()
        self._pending: list[_Item] = []
        self._busy = False  # a batch is being collected or run (by a task or a lone caller)
        self._last_size = 0

    async def predict(self, text: str, model: IntentModel) -> Prediction:
        """The model's prediction for one normalised text, computed in a batch with others.

        Raises whatever the model raised for the batch this text was in.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append(_Item(text, model, future, loop.time()))
        if self._busy:
            return await future
        if self._last_size <= 1 and len(self._pending) == 1:
            # Idle and not under load: this caller runs its own batch of one, with no task and
            # no loop turn in between (a lone caller would otherwise pay ~20 us, measured).
            self._busy = True
            try:
                await self._execute(self._take())
            finally:
                self._busy = False
                if self._pending:
                    self._start(loop)
            return future.result()
        self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._busy = True
        loop.create_task(self._run(), name="nlu-batcher")

    def _take(self) -> list[_Item]:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._last_size = len(batch)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                # Collect while texts keep arriving: stop when the batch is full, when a loop turn
                # brought nothing new, or when the oldest text has waited NLU_BATCH_WAIT_MS. A
                # fixed wait would cap a few steady callers at one batch per wait (8 callers, 2 ms:
                # 4,000 req/s where one at a time does 14,000); texts that come later join the
                # next batch, which fills while this one runs.
                deadline = self._pending[0].queued_at + self.wait
                # After a lone text, the next is most likely lone too: no loop turn spent waiting.
                seen = len(self._pending) if self._last_size <= 1 else -1
                while (
                    len(self._pending) < self.max_batch
                    and len(self._pending) != seen
                    and loop.time() < deadline
                ):
                    seen = len(self._pending)
                    await asyncio.sleep(0)
                await self._execute(self._take())
        finally:
            self._busy = False

    async def _execute(self, batch: list[_Item]) -> None:
        # Callers that gave up (cancelled) cost nothing.
        live = [item for item in batch if not item.future.done()]
        # A promotion between two callers' lookups can mix models in one batch: one run each.
        groups: dict[int, list[_Item]] = {}
        for item in live:
            groups.setdefault(id(item.model), []).append(item)
        loop = asyncio.get_running_loop()
        for items in groups.values():
            texts = [item.text for item in items]
            self.stats.record(len(texts))
            try:
                predictions = await loop.run_in_executor(_INFERENCE, items[0].model.predict, texts)
            except Exception as exc:  # every caller of the batch gets the same error
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            for item, prediction in zip(items, predictions, strict=True):
                if not item.future.done():
                    item.future.set_result(prediction)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MicroBatcher] = (
    weakref.WeakKeyDictionary()
)


def get_batcher() -> MicroBatcher:
    """This event loop's batcher, made with the current settings on first use."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = MicroBatcher(max_batch=settings.NLU_BATCH_MAX, wait_ms=settings.NLU_BATCH_WAIT_MS)
        _batchers[loop] = batcher
    return batcher
