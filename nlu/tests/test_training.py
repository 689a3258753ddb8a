"""Training, promoting and rolling back classifiers: the services, the command and the admin."""

from __future__ import annotations

import io
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from nlu.classifier.artifact import IntentModel
from nlu.exceptions import TrainingDataInvalid
from nlu.models import Intent, IntentExample, NluModel, NluModelStatus
from nlu.training import (
    NluModelNotReady,
    NoPreviousModel,
    nlu_model_promote,
    nlu_model_rollback,
    nlu_model_train,
)
from testkit.processes import start_celery_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db) -> None:  # type: ignore[no-untyped-def]
    call_command("load_demo", stdout=io.StringIO())


@pytest.fixture
def staff_client(client, db):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def test_a_model_trains_on_the_active_intents_and_does_not_serve_until_promoted(demo):
    # given an inactive intent, whose examples must not be learnt
    Intent.objects.filter(name="goodbye").update(active=False)

    # when
    model = nlu_model_train()

    # then it is stored with its artifact and evaluation, not serving
    assert model.status == NluModelStatus.READY and not model.is_serving
    assert set(model.labels) == {"greeting", "order_meal", "check_order", "out_of_scope"}
    assert model.example_count == IntentExample.objects.exclude(intent__name="goodbye").count()
    assert 0 <= model.metrics["accuracy"] <= 1 and "per_intent" in model.metrics
    assert bytes(model.confusion_png).startswith(b"\x89PNG")
    prediction = IntentModel(bytes(model.artifact), model.labels).predict(["我要点两份套餐"])[0]
    assert prediction.intent == "order_meal" and len(prediction.top) == 3


def test_bad_training_data_fails_clearly_and_the_serving_model_stays(demo):
    serving = nlu_model_promote(nlu_model_train())
    Intent.objects.exclude(name="greeting").update(active=False)

    with pytest.raises(TrainingDataInvalid):
        nlu_model_train()

    failed = NluModel.objects.order_by("-pk").first()
    assert failed.status == NluModelStatus.FAILED and failed.error
    assert NluModel.objects.get(is_serving=True) == serving


def test_promote_serves_one_model_at_a_time_and_rollback_returns_to_the_previous(demo):
    first, second = nlu_model_train(), nlu_model_train()
    with pytest.raises(NoPreviousModel):
        nlu_model_rollback()

    nlu_model_promote(first)
    nlu_model_promote(second)
    assert list(NluModel.objects.filter(is_serving=True)) == [second]

    assert nlu_model_rollback() == first
    assert list(NluModel.objects.filter(is_serving=True)) == [first]


def test_a_failed_model_cannot_be_promoted(demo):
    failed = NluModel.objects.create(status=NluModelStatus.FAILED, error="no")
    with pytest.raises(NluModelNotReady):
        nlu_model_promote(failed)


def test_the_command_trains_promotes_and_leaves_a_serving_model_alone(demo):
    out = io.StringIO()
    call_command("train_nlu", "--promote", stdout=out, stderr=io.StringIO())
    assert "now serves" in out.getvalue() and "accuracy" in out.getvalue()
    again = io.StringIO()
    call_command("train_nlu", "--promote", "--if-none-serving", stdout=again)
    assert "nothing to do" in again.getvalue()
    assert NluModel.objects.count() == 1


def test_the_command_reports_bad_data_as_an_error(db):
    Intent.objects.create(name="alone", reply_mode="llm").examples.create(text="hi")
    with pytest.raises(CommandError, match="intent"):
        call_command("train_nlu", stdout=io.StringIO(), stderr=io.StringIO())


# transaction=True: the task is enqueued once the new row commits, as in production.
@pytest.mark.django_db(transaction=True)
def test_staff_train_read_the_evaluation_promote_and_roll_back_in_the_admin(
    staff_client, demo, eager_celery
):
    changelist = reverse("admin:nlu_nlumodel_changelist")

    # when staff press Train (eager Celery: it trains within the request)
    response = staff_client.post(reverse("admin:nlu_nlumodel_train"), follow=True)
    assert "is trained; read its evaluation" in response.content.decode()
    model = NluModel.objects.get()

    # then the change page shows the evaluation and the confusion matrix image
    page = staff_client.get(reverse("admin:nlu_nlumodel_change", args=[model.pk])).content.decode()
    assert "cross-validated" in page.lower() and "order_meal" in page
    image = staff_client.get(reverse("admin:nlu_nlumodel_confusion", args=[model.pk]))
    assert image["Content-Type"] == "image/png" and image.content.startswith(b"\x89PNG")

    # and the promote action makes it serve
    response = staff_client.post(
        changelist, {"action": "promote", "_selected_action": [model.pk]}, follow=True
    )
    assert "now serves" in response.content.decode()
    assert NluModel.objects.get(is_serving=True) == model

    # and roll back says clearly when there is nothing to go back to
    response = staff_client.post(reverse("admin:nlu_nlumodel_rollback"), follow=True)
    assert "nothing to roll back to" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_training_bad_data_from_the_admin_shows_the_reason(staff_client, db, eager_celery):
    Intent.objects.create(name="alone", reply_mode="llm").examples.create(text="hi")
    response = staff_client.post(reverse("admin:nlu_nlumodel_train"), follow=True)
    assert "could not be trained" in response.content.decode()
    assert NluModel.objects.get().status == NluModelStatus.FAILED


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (the Celery broker)")
def test_the_admin_button_trains_on_a_real_worker(staff_client, demo, tmp_path):
    # given a real worker on the default queue (not eager: a broker is configured)
    worker = start_celery_worker("celery", CHATSITE_VAR_DIR=str(tmp_path / "worker"))
    try:
        # when staff press Train
        response = staff_client.post(reverse("admin:nlu_nlumodel_train"), follow=True)
        assert "is training; reload this page" in response.content.decode()

        # then the worker, a separate process, trains and stores the model
        model = NluModel.objects.get()
        deadline = time.monotonic() + 120
        while model.status == NluModelStatus.TRAINING and time.monotonic() < deadline:
            time.sleep(0.5)
            model.refresh_from_db()
        assert model.status == NluModelStatus.READY, model.error
        assert model.metrics["accuracy"] > 0.5 and not model.is_serving
    finally:
        worker.terminate()
        worker.wait(30)
