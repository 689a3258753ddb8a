"""Intent classifier versions over the API (scope admin-data): train, read, promote, roll back."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from integrations.keys import api_key_revoke
from integrations.models import ApiKey
from nlu.models import Intent, NluModel, NluModelStatus
from nlu.tests.api_helpers import call, error_code, follow_pages
from nlu.tests.nlu_fixtures import serving_nlu_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db) -> None:  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=io.StringIO())


def ready_model(**metrics) -> NluModel:  # type: ignore[no-untyped-def]
    """A trained model that does not serve (the tiny real artifact)."""
    model = serving_nlu_model(promote=False)
    if metrics:
        model.metrics = metrics
        model.save(update_fields=["metrics"])
    return model


def test_training_starts_in_the_background_and_the_model_is_read_back(
    client, admin_key, demo, eager_celery, django_capture_on_commit_callbacks, alice
):
    # when (the task is enqueued once the row commits; eager Celery runs it then)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = call(client, "post", "/nlu/models", admin_key)

    # then the answer is the row as it starts: training, not serving
    assert response.status_code == 202, response.content
    started = response.json()
    assert (started["status"], started["is_serving"], started["labels"]) == ("training", False, [])
    assert started["metrics"]["accuracy"] is None and len(callbacks) == 1

    # and once trained it has its evaluation, and the key's owner as its author
    body = call(client, "get", f"/nlu/models/{started['id']}", admin_key).json()
    assert body["status"] == "ready" and body["promoted_at"] is None
    assert set(body["labels"]) == set(Intent.objects.values_list("name", flat=True))
    metrics = body["metrics"]
    assert 0 <= metrics["accuracy"] <= 1 and metrics["folds"] >= 2
    assert metrics["examples"] == body["example_count"] > 0
    assert metrics["confidence_threshold"] == 0.7
    assert set(body["per_intent"]) == set(body["labels"])
    assert NluModel.objects.get().created_by == alice


def test_training_bad_data_ends_failed_with_the_reason(
    client, admin_key, eager_celery, django_capture_on_commit_callbacks
):
    Intent.objects.create(name="alone", reply_mode="llm").examples.create(text="hi")
    with django_capture_on_commit_callbacks(execute=True):
        started = call(client, "post", "/nlu/models", admin_key).json()
    body = call(client, "get", f"/nlu/models/{started['id']}", admin_key).json()
    assert body["status"] == "failed" and "intent" in body["error"]


def test_a_retried_train_starts_one_model(
    client, admin_key, demo, django_capture_on_commit_callbacks
):
    # (no worker runs here: the rows stay "training")
    with django_capture_on_commit_callbacks() as callbacks:
        first = call(client, "post", "/nlu/models", admin_key, idempotency_key="train-1")
        retry = call(client, "post", "/nlu/models", admin_key, idempotency_key="train-1")
    assert (first.status_code, retry.status_code) == (202, 202)
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert NluModel.objects.count() == 1 and len(callbacks) == 1

    body = {"promote": True}
    response = call(client, "post", "/nlu/models", admin_key, body, idempotency_key="train-1")
    assert (response.status_code, error_code(response)) == (422, "idempotency_key_reused")


def test_models_are_listed_newest_first_with_the_serving_one_marked(
    client, admin_key, django_assert_max_num_queries
):
    old = ready_model(accuracy=0.8, macro_f1=0.75, calibration={"threshold": 0.7})
    serving = serving_nlu_model()
    failed = NluModel.objects.create(status=NluModelStatus.FAILED, error="Too few examples")

    with django_assert_max_num_queries(4):
        response = call(client, "get", "/nlu/models", admin_key)

    rows = response.json()["results"]
    assert [(m["id"], m["status"], m["is_serving"]) for m in rows] == [
        (failed.pk, "failed", False),
        (serving.pk, "ready", True),
        (old.pk, "ready", False),
    ]
    assert rows[2]["metrics"] == {
        "accuracy": 0.8,
        "macro_f1": 0.75,
        "examples": None,
        "folds": None,
        "confidence_threshold": 0.7,
        "coverage": None,
        "precision": None,
    }
    assert rows[0]["error"] == "Too few examples"
    pages = follow_pages(client, "/nlu/models", admin_key, limit=2)
    assert [[m["id"] for m in page] for page in pages] == [[failed.pk, serving.pk], [old.pk]]


def test_promote_then_roll_back(client, admin_key):
    first, second = ready_model(), ready_model()

    # nothing served before: nothing to roll back to
    response = call(client, "post", "/nlu/models/rollback", admin_key)
    assert (response.status_code, error_code(response)) == (409, "nlu_no_previous_model")

    for model in (first, second):
        response = call(client, "post", f"/nlu/models/{model.pk}/promote", admin_key)
        assert response.status_code == 200, response.content
        assert response.json()["is_serving"] is True and response.json()["promoted_at"]
    assert list(NluModel.objects.filter(is_serving=True)) == [second]

    response = call(client, "post", "/nlu/models/rollback", admin_key)
    assert response.status_code == 200 and response.json()["id"] == first.pk
    assert list(NluModel.objects.filter(is_serving=True)) == [first]


def test_only_a_trained_model_can_be_promoted(client, admin_key):
    for status in (NluModelStatus.TRAINING, NluModelStatus.FAILED):
        model = NluModel.objects.create(status=status)
        response = call(client, "post", f"/nlu/models/{model.pk}/promote", admin_key)
        assert (response.status_code, error_code(response)) == (409, "nlu_model_not_ready")
    assert not NluModel.objects.filter(is_serving=True).exists()


@pytest.mark.parametrize("model_id", [987654, 10**30])
def test_an_unknown_model_is_a_404(client, admin_key, model_id):
    for method, path in [
        ("get", f"/nlu/models/{model_id}"),
        ("post", f"/nlu/models/{model_id}/promote"),
    ]:
        response = call(client, method, path, admin_key)
        assert (response.status_code, error_code(response)) == (404, "nlu_model_not_found")


def test_models_need_the_admin_data_scope(client, nlu_key):
    model = ready_model()
    assert call(client, "get", "/nlu/models", None).status_code == 401
    for method, path in [
        ("get", "/nlu/models"),
        ("post", "/nlu/models"),
        ("get", f"/nlu/models/{model.pk}"),
        ("post", f"/nlu/models/{model.pk}/promote"),
        ("post", "/nlu/models/rollback"),
    ]:
        response = call(client, method, path, nlu_key)
        assert (response.status_code, error_code(response)) == (403, "scope_missing"), path
    assert NluModel.objects.count() == 1 and not NluModel.objects.filter(is_serving=True).exists()


def test_a_revoked_key_is_refused_on_its_next_request(client, admin_key):
    model = ready_model()
    assert call(client, "get", "/nlu/models", admin_key).status_code == 200
    api_key_revoke(ApiKey.objects.get())
    response = call(client, "post", f"/nlu/models/{model.pk}/promote", admin_key)
    assert (response.status_code, error_code(response)) == (401, "api_key_revoked")
    model.refresh_from_db()
    assert not model.is_serving
