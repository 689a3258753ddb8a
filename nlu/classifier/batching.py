"""Micro-batches for the online path: many concurrent callers, one inference per batch.

`await get_batcher().predict(normalized_text, model)` queues the text. A batch closes when it
holds NLU_BATCH_MAX texts, when its oldest text has waited NLU_BATCH_WAIT_MS, or as soon as a turn
of the event loop brings no new text (a lone caller never waits for company that is not coming).
It runs as one `IntentModel.predict_first` in the process's inference thread (onnxruntime
releases the GIL, so the event loop keeps running). While a batch runs, the next one fills up:
under load batches grow by themselves.

A cascade model (artifact.py) leaves some texts to its e5 encoder: those queue again, in a second
batcher whose batches run `IntentModel.predict_encoded` in an encoder thread of their own, so
that a batch being embedded (~10 ms a text) never holds up the texts the first stage answers in
well under a millisecond. A caller waits for the encoder at most NLU_ENCODER_BUDGET_MS: past it,
the first stage's answer stands (`Stage.OVER_BUDGET`; below the 0.7 threshold the LLM still
decides), and a text whose caller left is dropped from the encoder's queue. Under light load the
encoder answers in time; under overload the budget keeps the tail short instead of letting the
queue, and every caller's wait, grow.

One batcher per event loop (like conversations.streams' hub); the threads are shared by the whole
process, so two loops never run two inferences of one stage at once on 2 cores.
"""

from __future__ import annotations

import asyncio
import enum
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings

from nlu.classifier.artifact import FirstAnswer, IntentModel, Prediction

# One thread per stage: inference is CPU-bound, and more would only split the same cores.
_INFERENCE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-inference")
_ENCODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-encoder")


class Stage(enum.StrEnum):
    """Which part of the model answered a text."""

    FIRST = "first"  # the first stage (the whole model when it has no encoder)
    ENCODER = "encoder"  # the whole graph, the text embedded
    OVER_BUDGET = "over_budget"  # the first stage, the encoder being too slow for the budget


@dataclass
class _Item:
    text: str
    model: IntentModel
    future: asyncio.Future[object]
    queued_at: float
    deadline: float | None = None  # loop time after which the caller no longer waits


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
    """The online path's batches: the first stage for every text, then the encoder's for the
    texts a cascade hands on."""

    def __init__(self, *, max_batch: int, wait_ms: float, encoder_budget_ms: float = 0) -> None:
        self.first = StageBatcher("predict_first", _INFERENCE, max_batch=max_batch, wait_ms=wait_ms)
        # Seconds a caller waits for the encoder; 0: as long as it takes.
        self.encoder_budget = max(encoder_budget_ms, 0.0) / 1000
        self.encoder = StageBatcher(
            "predict_encoded",
            _ENCODER,
            max_batch=max_batch,
            wait_ms=wait_ms,
            budget=self.encoder_budget,
        )
        self.over_budget = 0

    @property
    def max_batch(self) -> int:
        return self.first.max_batch

    @property
    def stats(self) -> BatchStats:
        """The first stage's batches (every text goes through it)."""
        return self.first.stats

    async def predict(self, text: str, model: IntentModel) -> Prediction:
        """The model's prediction for one normalised text, computed in a batch with others.

        Raises whatever the model raised for the batch this text was in.
        """
        prediction, _ = await self.predict_staged(text, model)
        return prediction

    async def predict_staged(self, text: str, model: IntentModel) -> tuple[Prediction, Stage]:
        """predict(), and which stage answered."""
        first = await self.first.predict(text, model)
        if not isinstance(first, FirstAnswer):
            raise TypeError("the first stage must give a FirstAnswer")
        if first.final and first.prediction is not None:
            return first.prediction, Stage.FIRST
        if first.prediction is None or not self.encoder_budget:
            encoded = await self.encoder.predict(text, model)
        else:
            deadline = asyncio.get_running_loop().time() + self.encoder_budget
            try:
                encoded = await asyncio.wait_for(
                    self.encoder.predict(text, model, deadline=deadline), self.encoder_budget
                )
            except TimeoutError:  # the wait ran out, or the encoder saw it could not make it
                self.over_budget += 1
                return first.prediction, Stage.OVER_BUDGET
        if not isinstance(encoded, Prediction):
            raise TypeError("the encoder stage must give a Prediction")
        return encoded, Stage.ENCODER


class StageBatcher:
    """Collects texts from concurrent callers into batches of one model method (`stage`) run on
    `executor`; one batch runs at a time."""

    def __init__(
        self,
        stage: str,
        executor: ThreadPoolExecutor,
        *,
        max_batch: int,
        wait_ms: float,
        budget: float = 0.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.stage = stage
        self.executor = executor
        self.max_batch = max_batch
        self.wait = max(wait_ms, 0.0) / 1000
        # Seconds a caller waits at most (0: no limit): a batch is cut to what the stage, at its
        # measured pace, finishes within it. A batch of 8 e5 texts takes ~70 ms, so without the
        # cut a 50 ms budget was missed by every text of every batch (8 callers, measured).
        self.budget = budget
        self.seconds_per_text = 0.0  # moving average of the stage's measured pace
        self.stats = BatchStats()
        self._pending: list[_Item] = []
        self._busy = False  # a batch is being collected or run (by a task or a lone caller)
        self._last_size = 0

    async def predict(
        self, text: str, model: IntentModel, *, deadline: float | None = None
    ) -> object:
        """The stage's answer for one normalised text, computed in a batch with others.

        Raises whatever the model raised for the batch this text was in, or TimeoutError as
        soon as the stage's pace says it cannot answer by `deadline` (loop time).
        """
        loop = asyncio.get_running_loop()
        if not self._busy and not self._pending and self._last_size <= 1:
            # Idle and not under load: this caller runs its own batch of one, with no future, no
            # task and no loop turn in between (a lone caller would otherwise pay ~20 us).
            self._busy = True
            try:
                self.stats.record(1)
                run = getattr(model, self.stage)
                started = time.perf_counter()
                (answer,) = await loop.run_in_executor(self.executor, run, [text])
                self._pace(time.perf_counter() - started, 1)
                return answer
            finally:
                self._last_size = 1
                self._busy = False
                if self._pending:
                    self._start(loop)
        future: asyncio.Future[object] = loop.create_future()
        self._pending.append(_Item(text, model, future, loop.time(), deadline))
        if not self._busy:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._busy = True
        loop.create_task(self._run(), name="nlu-batcher")

    def batch_size(self) -> int:
        """The largest batch that fits the budget at the measured pace (max_batch without)."""
        if not (self.budget and self.seconds_per_text):
            return self.max_batch
        return max(1, min(self.max_batch, int(self.budget / self.seconds_per_text)))

    def _pace(self, seconds: float, texts: int) -> None:
        pace = seconds / max(texts, 1)
        self.seconds_per_text = (
            pace if not self.seconds_per_text else (0.8 * self.seconds_per_text + 0.2 * pace)
        )

    def _take(self) -> list[_Item]:
        # Callers that left (cancelled) give up their place, and so do those the stage cannot
        # answer in time: they hear so now rather than at their deadline.
        now = asyncio.get_running_loop().time()
        pending = []
        for item in self._pending:
            if item.future.done():
                continue
            if item.deadline is not None and now + self.seconds_per_text > item.deadline:
                item.future.set_exception(TimeoutError())
                continue
            pending.append(item)
        size = self.batch_size()
        if self.budget:
            # Newest first: under overload the oldest texts are the ones that would miss their
            # deadline anyway (first in, first out would make every text wait past it).
            batch, self._pending = pending[-size:], pending[:-size]
        else:
            batch, self._pending = pending[:size], pending[size:]
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
                    len(self._pending) < self.batch_size()
                    and len(self._pending) != seen
                    and loop.time() < deadline
                ):
                    seen = len(self._pending)
                    await asyncio.sleep(0)
                batch = self._take()
                if batch:
                    await self._execute(batch)
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
                run = getattr(items[0].model, self.stage)
                started = time.perf_counter()
                predictions = await loop.run_in_executor(self.executor, run, texts)
                self._pace(time.perf_counter() - started, len(texts))
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
        batcher = MicroBatcher(
            max_batch=settings.NLU_BATCH_MAX,
            wait_ms=settings.NLU_BATCH_WAIT_MS,
            encoder_budget_ms=settings.NLU_ENCODER_BUDGET_MS,
        )
        _batchers[loop] = batcher
    return batcher
