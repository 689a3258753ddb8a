"""Serving the intent model: the registry, the micro-batcher, the cache, classify, the tasks."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache

from nlu.classifier import serving
from nlu.classifier.artifact import FirstAnswer, IntentModel, Prediction
from nlu.classifier.batching import MicroBatcher, Stage, get_batcher
from nlu.classifier.cache import prediction_key
from nlu.classifier.normalize import normalize
from nlu.models import NluModel
from nlu.predict import classify, classify_texts
from nlu.tasks import classify_texts_batch_task, warm_up_nlu_task
from nlu.tests.nlu_fixtures import cascade_artifact, serving_nlu_model, tiny_artifact
from testkit.processes import start_celery_worker

# The registry reads rows from executor threads: they see only committed data.
pytestmark = pytest.mark.django_db(transaction=True)

new_model = database_sync_to_async(serving_nlu_model)


@pytest.fixture(autouse=True)
def _fresh_registry(settings, tmp_path):  # type: ignore[no-untyped-def]
    """Each test starts with nothing loaded, checks on every call and its own local copies."""
    settings.NLU_MODEL_CHECK_SECONDS = 0
    settings.VAR_DIR = tmp_path
    serving.reset()
    cache.delete(serving.VERSION_KEY)
    yield
    serving.reset()
    cache.delete(serving.VERSION_KEY)


def unique(text: str) -> str:
    """The text with a fresh word, so no earlier run's cached prediction answers it (shared Redis)."""
    return f"{text} {uuid.uuid4().hex[:8]}"


class CountingModel:
    """An IntentModel that records the size of every batch it runs."""

    def __init__(self, model: IntentModel, *, fail: bool = False) -> None:
        self.model = model
        self.fail = fail
        self.batches: list[int] = []
        self.encoded: list[int] = []
        self.encoder_delay = 0.0

    def predict(self, texts: list[str], *, top: int = 3) -> list[Prediction]:
        self.batches.append(len(texts))
        if self.fail:
            raise RuntimeError("inference failed")
        return self.model.predict(texts, top=top)

    def predict_first(self, texts: list[str], *, top: int = 3) -> list[FirstAnswer]:
        self.batches.append(len(texts))
        if self.fail:
            raise RuntimeError("inference failed")
        return self.model.predict_first(texts, top=top)

    def predict_encoded(self, texts: list[str], *, top: int = 3) -> list[Prediction]:
        self.encoded.append(len(texts))
        time.sleep(self.encoder_delay)
        return self.model.predict_encoded(texts, top=top)


def real_model(variant: int = 0) -> IntentModel:
    return IntentModel(*tiny_artifact(variant))


# --- The registry ---------------------------------------------------------------------------------


def test_no_serving_model_gives_none():
    # given a model that was trained but never promoted
    serving_nlu_model(promote=False)

    # when / then
    assert serving.serving_model() is None
    assert serving.warm_up() is False


def test_the_serving_model_loads_from_the_database_and_keeps_a_local_copy():
    # given a promoted model
    row = serving_nlu_model()

    # when
    loaded = serving.serving_model()

    # then it is that row's artifact, and a copy is on disk
    assert loaded is not None
    assert (loaded.version, loaded.sha256) == (row.pk, row.artifact_sha256)
    assert loaded.model.predict(["hello"])[0].intent == "greeting"
    path = serving.local_path(row.pk, row.artifact_sha256)
    assert path.read_bytes() == bytes(row.artifact)

    # and a restarted process loads the copy, not the blob
    NluModel.objects.filter(pk=row.pk).update(artifact=None)
    serving.reset()
    assert serving.serving_model().version == row.pk


def test_a_broken_artifact_keeps_the_previous_model(caplog):
    # given a serving model, then a promoted one whose bytes are not ONNX
    first = serving_nlu_model()
    assert serving.serving_model().version == first.pk
    NluModel.objects.update(is_serving=False)
    broken = NluModel.objects.create(
        status="ready", is_serving=True, labels=["a"], artifact=b"not onnx", artifact_sha256=""
    )

    # when every process is told
    serving.serving_version_changed(broken.pk)

    # then this one keeps answering with the model it had
    assert serving.serving_model().version == first.pk
    assert "nlu model failed to load" in caplog.text


def test_another_process_promotion_is_seen_at_the_next_check(settings):
    # given a loaded model and a long check interval
    first = serving_nlu_model()
    assert serving.serving_model().version == first.pk
    settings.NLU_MODEL_CHECK_SECONDS = 3600

    # when another process promotes a second model (the row and the cache key, not our registry)
    second = serving_nlu_model(1)
    cache.set(serving.VERSION_KEY, second.pk, timeout=None)

    # then this process keeps the first until its next check is due
    assert serving.serving_model().version == first.pk
    settings.NLU_MODEL_CHECK_SECONDS = 0
    assert serving.serving_model().version == second.pk


def test_warm_up_loads_and_predicts():
    # given
    row = serving_nlu_model()

    # when
    warmed = serving.warm_up()

    # then
    assert warmed is True
    assert serving.current_model().version == row.pk
    assert serving.start_warm_up().result(timeout=30) is True


# --- classify: the online path ----------------------------------------------------------------


async def test_classify_without_a_model_has_no_opinion():
    assert await classify("hello") is None


async def test_promoting_a_second_model_switches_the_next_classify():
    # given a serving model that answered once
    first = await new_model(0)
    before = await classify(unique("hello"))
    assert (before.model_version, before.intent, before.source) == (first.pk, "greeting", "model")
    assert len(before.top) == 3 and before.top[0][1] >= before.top[1][1] >= before.top[2][1]

    # when a second model is promoted and the processes are told
    second = await new_model(1)
    await sync_to_async(serving.serving_version_changed)(second.pk)

    # then the next classification uses it
    after = await classify(unique("hello"))
    assert (after.model_version, after.intent) == (second.pk, "greeting_v1")


async def test_a_repeated_text_comes_from_the_cache_until_the_model_changes():
    # given
    first = await new_model(0)
    text = unique("two pizzas please")

    # when the same text (in another spelling of the same normal form) is classified twice
    fresh = await classify(text)
    repeat = await classify(f"  {text.upper()} ")

    # then the second answer is the cached one
    assert (fresh.source, repeat.source) == ("model", "cache")
    assert [i for i, _ in repeat.top] == [i for i, _ in fresh.top]
    key = prediction_key(first.pk, first.artifact_sha256, normalize(text))
    assert key.startswith(f"nlu:pred:v{first.pk}-") and await cache.aget(key) is not None

    # and a newly promoted model misses the cache
    second = await new_model(1)
    await sync_to_async(serving.serving_version_changed)(second.pk)
    after = await classify(text)
    assert (after.source, after.model_version) == ("model", second.pk)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "\x00\x01\x7f\u200b\ufeff",
        "a" * 100_000,
        "😀😀😀🍔",
        "hello 你好 привет مرحبا שלום",
        "hi \ud800 there",  # a lone surrogate, as json.loads lets through
        "Ｈｅｌｌｏ　ＷＯＲＬＤ",
        None,
        b"bytes",
    ],
)
async def test_bad_input_never_crashes(text):
    # given
    await new_model(0)

    # when
    result = await classify(text)  # type: ignore[arg-type]

    # then: no opinion for nothing, a normal answer for anything else
    if result is not None:
        assert result.source in {"model", "cache"} and len(result.top) == 3
        assert all(0.0 <= confidence <= 1.0 for _, confidence in result.top)
    if text in ("", "   \n\t ", "\x00\x01\x7f\u200b\ufeff", None, b"bytes"):
        assert result is None


# --- The micro-batcher ------------------------------------------------------------------------


async def test_concurrent_calls_share_batches_and_match_one_at_a_time():
    # given a batcher that waits long enough for every caller to arrive
    model = CountingModel(real_model())
    batcher = MicroBatcher(max_batch=32, wait_ms=50)
    texts = [normalize(t) for t in ["hello", "two pizzas please", "where is my order", "bye"] * 5]

    # when 20 callers ask at once
    results = await asyncio.gather(*(batcher.predict(t, model) for t in texts))

    # then there were fewer inferences than callers, and the answers are the one-at-a-time ones
    assert len(model.batches) < len(texts) and sum(model.batches) == len(texts)
    alone = [model.model.predict([t])[0] for t in texts]
    for batched, single in zip(results, alone, strict=True):
        assert [i for i, _ in batched.top] == [i for i, _ in single.top]
        assert [c for _, c in batched.top] == pytest.approx([c for _, c in single.top], abs=1e-5)


async def test_a_cascade_sends_only_unsure_texts_to_the_encoder_stage():
    # given the default recipe's model, and texts it is sure of and texts it is not
    model = CountingModel(IntentModel(*cascade_artifact()))
    batcher = MicroBatcher(max_batch=32, wait_ms=50)
    texts = [normalize(t) for t in ["hello", "two pizzas please", "zqx vvk", "blorp?", "再见"]]
    _, routed = model.model.first_stage(texts)
    assert 0 < routed.sum() < len(texts)

    # when they are classified at once
    results = await asyncio.gather(*(batcher.predict(t, model) for t in texts))

    # then every text went through the first stage, only the unsure ones through the encoder's,
    # and the answers are the model's own
    assert sum(model.batches) == len(texts)
    assert sum(model.encoded) == routed.sum()
    assert batcher.encoder.stats.texts == routed.sum()
    for result, expected in zip(results, model.model.predict(texts), strict=True):
        assert result.top == pytest.approx(expected.top)


async def test_past_the_encoder_budget_the_first_stage_answers():
    # given a cascade whose encoder takes 300 ms, and a budget of 20 ms
    model = CountingModel(IntentModel(*cascade_artifact()))
    model.encoder_delay = 0.3
    batcher = MicroBatcher(max_batch=8, wait_ms=1, encoder_budget_ms=20)
    unsure, sure = normalize("zqx vvk"), normalize("hello")
    (first_unsure, first_sure) = model.model.predict_first([unsure, sure])
    assert not first_unsure.final and first_sure.final

    # when both are classified
    started = time.perf_counter()
    (a, a_stage), (b, b_stage) = await asyncio.gather(
        batcher.predict_staged(unsure, model), batcher.predict_staged(sure, model)
    )

    # then the unsure one got the first stage's answer in time, the sure one its own
    assert time.perf_counter() - started < 0.25
    assert (a_stage, b_stage) == (Stage.OVER_BUDGET, Stage.FIRST)
    assert a.top == first_unsure.prediction.top
    assert batcher.over_budget == 1
    # and without a budget the encoder's answer is awaited
    patient = MicroBatcher(max_batch=8, wait_ms=1, encoder_budget_ms=0)
    c, c_stage = await patient.predict_staged(unsure, model)
    assert c_stage == Stage.ENCODER
    assert c.top == pytest.approx(model.model.predict([unsure])[0].top)


async def test_an_answer_over_budget_is_not_cached(settings):
    # given a serving cascade model and a budget nothing can meet
    settings.NLU_ENCODER_BUDGET_MS = 0.001
    await sync_to_async(serving_nlu_model)(artifact=cascade_artifact())
    text = unique("zqx vvk")

    # when an unsure text is classified twice
    first = await classify(text)
    second = await classify(text)

    # then both came from the model's first stage, over budget: the first was not cached
    assert first is not None and second is not None
    assert (first.source, first.stage) == ("model", "over_budget")
    assert (second.source, second.stage) == ("model", "over_budget")


async def test_a_batch_never_exceeds_the_maximum_and_a_full_one_does_not_wait():
    # given a maximum of 4 and a wait far longer than the test
    model = CountingModel(real_model())
    batcher = MicroBatcher(max_batch=4, wait_ms=600_000)

    # when 12 callers ask at once
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.predict(f"hello {i}", model) for i in range(12))), timeout=60
    )

    # then full batches went at once (the first caller, finding the batcher idle, ran alone)
    assert len(results) == 12
    assert model.batches == [1, 4, 4, 3]


async def test_a_lone_caller_is_answered_after_the_wait():
    # given a large maximum and a short wait
    model = CountingModel(real_model())
    batcher = MicroBatcher(max_batch=1000, wait_ms=1)

    # when one caller asks, then another after the first answer
    first = await batcher.predict("hello", model)
    second = await batcher.predict("bye", model)

    # then each ran alone (the wait, not a full batch, closed them)
    assert (first.intent, second.intent) == ("greeting", "goodbye")
    assert model.batches == [1, 1]


async def test_an_inference_error_reaches_every_caller_of_the_batch():
    # given a model that fails
    model = CountingModel(real_model(), fail=True)
    batcher = MicroBatcher(max_batch=8, wait_ms=50)

    # when
    results = await asyncio.gather(
        *(batcher.predict(f"hello {i}", model) for i in range(5)), return_exceptions=True
    )

    # then
    assert all(isinstance(r, RuntimeError) for r in results)
    # and the batcher still works afterwards
    model.fail = False
    assert (await batcher.predict("hello", model)).intent == "greeting"


async def test_two_models_in_one_batch_each_answer_their_own_callers():
    # given callers that looked up the model before and after a promotion
    old, new = CountingModel(real_model(0)), CountingModel(real_model(1))
    batcher = MicroBatcher(max_batch=8, wait_ms=50)

    # when
    a, b = await asyncio.gather(batcher.predict("hello", old), batcher.predict("hello", new))

    # then
    assert (a.intent, b.intent) == ("greeting", "greeting_v1")
    assert (old.batches, new.batches) == ([1], [1])


async def test_one_batcher_per_event_loop_made_from_the_settings(settings):
    settings.NLU_BATCH_MAX = 7
    batcher = get_batcher()
    assert batcher is get_batcher()
    assert batcher.max_batch == 7


# --- The bulk path and its tasks ----------------------------------------------------------------


def test_classify_texts_runs_in_batches(settings):
    # given
    settings.NLU_BATCH_MAX = 2
    row = serving_nlu_model()
    texts = ["hello", "", "where is my order", "bye", "我要点餐"]

    # when
    results = classify_texts(texts)

    # then
    assert results[1] is None
    assert [r.intent if r else None for r in results] == [
        "greeting",
        None,
        "check_order",
        "goodbye",
        "order_meal",
    ]
    assert {r.model_version for r in results if r} == {row.pk}


def test_the_batch_task_returns_top_three_per_text_and_is_repeatable():
    # given
    row = serving_nlu_model()

    # when it runs twice
    first = classify_texts_batch_task(["hello", "   ", "bye"])
    second = classify_texts_batch_task(["hello", "   ", "bye"])

    # then
    assert [d["intent"] if d else None for d in first] == ["greeting", None, "goodbye"]
    assert [d["top"] if d else None for d in first] == [d["top"] if d else None for d in second]
    assert first[0]["model_version"] == row.pk and len(first[0]["top"]) == 3


def test_the_batch_task_without_a_model_answers_none_per_text():
    assert classify_texts_batch_task(["hello", "bye"]) == [None, None]


def test_the_warm_up_task_reports_the_model():
    row = serving_nlu_model()
    assert warm_up_nlu_task() == {"serving": True, "model_version": row.pk}


def test_batch_tasks_are_routed_to_the_nlu_queue():
    from chatsite.celery import app

    route = app.amqp.router.route({}, "nlu.classify_texts_batch")
    assert route["queue"].name == "nlu"
    assert app.amqp.router.route({}, "nlu.warm_up")["queue"].name == "celery"


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the Celery broker)")
def test_a_real_worker_on_the_nlu_queue_classifies_a_batch(tmp_path):
    from celery.backends.redis import RedisBackend

    from chatsite.celery import app

    # given a serving model and a real worker that consumes only the nlu queue
    row = serving_nlu_model()
    worker = start_celery_worker(
        "nlu", CELERY_RESULT_BACKEND=settings.REDIS_URL, CHATSITE_VAR_DIR=str(tmp_path / "worker")
    )
    try:
        # when the batch task is queued (not eager: a broker is configured)
        assert settings.CELERY_TASK_ALWAYS_EAGER is False
        sent = classify_texts_batch_task.delay(["hello", "", "where is my order"])

        # then the worker, a separate process, loads the model and answers
        backend = RedisBackend(app=app, url=settings.REDIS_URL)
        results = app.AsyncResult(sent.id, backend=backend).get(timeout=90)
        assert [d["intent"] if d else None for d in results] == ["greeting", None, "check_order"]
        assert results[0]["model_version"] == row.pk
        assert serving.local_path(row.pk, row.artifact_sha256).name in {
            p.name for p in (tmp_path / "worker" / "nlu").iterdir()
        }
    finally:
        worker.terminate()
        worker.wait(30)
