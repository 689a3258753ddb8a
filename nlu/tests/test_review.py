"""The review queue: recording low-confidence utterances, resolving them, the admin buttons."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from nlu.exceptions import ReviewIntentMissing, ReviewItemResolved, ReviewNoSuggestion
from nlu.models import Intent, IntentExample, NluModel, ReplyMode, ReviewItem, ReviewStatus
from nlu.review import (
    review_accept,
    review_accept_all,
    review_correct,
    review_dismiss,
    review_record,
)

TOP = [("greeting", 0.41), ("order_meal", 0.22)]


def record(text: str = "hello there", **fields) -> ReviewItem | None:
    options = {"top": TOP, "model_version_id": None, "suggested_intent": "greeting", **fields}
    return review_record(text=text, **options)


@pytest.fixture
def greeting(db) -> Intent:
    return Intent.objects.create(name="greeting", reply_mode=ReplyMode.LLM)


@pytest.fixture
def goodbye(db) -> Intent:
    return Intent.objects.create(name="goodbye", reply_mode=ReplyMode.LLM)


@pytest.fixture
def item(greeting) -> ReviewItem:
    result = record()
    assert result is not None
    return result


# --- review_record ---------------------------------------------------------------------------


def test_record_keeps_the_scores_and_the_suggestion(db):
    model = NluModel.objects.create(status="ready")
    item = record("Hello there", model_version_id=model.pk)
    assert item is not None
    assert (item.text, item.normalized, item.seen_count) == ("Hello there", "hello there", 1)
    assert item.top == [["greeting", 0.41], ["order_meal", 0.22]]
    assert (item.model_intent, item.model_confidence) == ("greeting", 0.41)
    assert (item.suggested_intent, item.nlu_model_id) == ("greeting", model.pk)


def test_the_same_sentence_is_one_open_item_counted(db):
    # given a sentence recorded once
    first = record("Hello there")
    # when it comes again in another spelling, with a newer suggestion
    second = record("  HELLO   there ", suggested_intent="goodbye")
    # then it is the same item, seen twice, with the latest suggestion
    assert first is not None and second is not None
    assert second.pk == first.pk
    assert (second.seen_count, second.suggested_intent) == (2, "goodbye")
    assert ReviewItem.objects.count() == 1


def test_an_empty_suggestion_keeps_the_earlier_one(db):
    record()
    item = record(suggested_intent="")
    assert item is not None and item.suggested_intent == "greeting"


@pytest.mark.parametrize("text", ["", "   ", "\u200b\n"])
def test_texts_that_normalise_to_nothing_are_ignored(db, text):
    assert record(text) is None
    assert not ReviewItem.objects.exists()


def test_long_texts_are_cut_and_a_missing_model_is_not_linked(db):
    item = record("a" * 800, model_version_id=12345)
    assert item is not None
    assert len(item.text) == 500
    assert item.nlu_model_id is None


def test_a_resolved_sentence_seen_again_opens_a_new_item(item, alice):
    review_dismiss(item, user=alice)
    again = record()
    assert again is not None and again.pk != item.pk
    assert again.status == ReviewStatus.OPEN


# --- resolving -------------------------------------------------------------------------------


def test_accept_adds_the_example_to_the_suggested_intent(item, greeting, alice):
    # when staff accept the suggestion
    resolved = review_accept(item, user=alice)
    # then the sentence is training data and the item is closed
    assert list(greeting.examples.values_list("text", flat=True)) == ["hello there"]
    item.refresh_from_db()
    assert item.status == ReviewStatus.ACCEPTED == resolved.status
    assert (item.resolved_intent, item.resolved_by) == (greeting, alice)
    assert item.resolved_at is not None


def test_accept_without_a_suggestion_is_refused(db, alice):
    item = record(suggested_intent="")
    assert item is not None
    with pytest.raises(ReviewNoSuggestion) as exc:
        review_accept(item, user=alice)
    assert exc.value.code == "review_no_suggestion"
    item.refresh_from_db()
    assert item.status == ReviewStatus.OPEN


def test_accept_of_an_intent_that_no_longer_exists_is_refused(db, alice):
    item = record(suggested_intent="vanished")
    assert item is not None
    with pytest.raises(ReviewIntentMissing) as exc:
        review_accept(item, user=alice)
    assert exc.value.code == "review_intent_missing"
    assert not IntentExample.objects.exists()


def test_correct_adds_the_example_to_the_chosen_intent(item, goodbye, alice):
    review_correct(item, intent=goodbye, user=alice)
    item.refresh_from_db()
    assert item.status == ReviewStatus.CORRECTED
    assert item.resolved_intent == goodbye
    assert list(IntentExample.objects.values_list("intent__name", "text")) == [
        ("goodbye", "hello there")
    ]


def test_dismiss_adds_nothing(item, alice):
    review_dismiss(item, user=alice)
    item.refresh_from_db()
    assert (item.status, item.resolved_intent, item.resolved_by) == (
        ReviewStatus.DISMISSED,
        None,
        alice,
    )
    assert not IntentExample.objects.exists()


@pytest.mark.parametrize("second", ["accept", "correct", "dismiss"])
def test_resolving_twice_is_an_error(item, greeting, alice, bob, second):
    # given an item bob already dismissed (alice still has the old page open)
    stale = ReviewItem.objects.get(pk=item.pk)
    review_dismiss(item, user=bob)
    # when alice resolves it too
    resolve = {
        "accept": lambda: review_accept(stale, user=alice),
        "correct": lambda: review_correct(stale, intent=greeting, user=alice),
        "dismiss": lambda: review_dismiss(stale, user=alice),
    }[second]
    with pytest.raises(ReviewItemResolved) as exc:
        resolve()
    # then it stays as bob left it
    assert exc.value.code == "review_item_resolved"
    assert "already dismissed" in exc.value.message
    item.refresh_from_db()
    assert (item.status, item.resolved_by) == (ReviewStatus.DISMISSED, bob)


def test_an_example_already_there_is_not_added_twice(item, greeting, alice):
    greeting.examples.create(text="hello there")
    review_accept(item, user=alice)
    item.refresh_from_db()
    assert item.status == ReviewStatus.ACCEPTED
    assert greeting.examples.count() == 1


def test_accept_all_reports_what_it_could_not_do(item, alice):
    other = record("what is this", suggested_intent="")
    result = review_accept_all(items=[item, other], user=alice)
    assert result.done == 1
    assert len(result.errors) == 1 and "no suggested intent" in result.errors[0]


# --- the admin -------------------------------------------------------------------------------


@pytest.fixture
def reviewer(client, db):
    """A staff member allowed to review (and so to add examples), not a superuser."""
    user = get_user_model().objects.create_user("reviewer", password="pw", is_staff=True)
    for codename in ("view_reviewitem", "change_reviewitem", "add_intentexample"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    client.user = user
    return client


def resolve_url(item: ReviewItem, verb: str) -> str:
    return reverse("admin:nlu_reviewitem_resolve", args=[item.pk, verb])


def test_the_queue_shows_open_items_with_their_buttons(reviewer, item, goodbye):
    # given an open item and a dismissed one
    done = record("bye now", suggested_intent="goodbye")
    assert done is not None
    review_dismiss(done, user=None)
    # when the reviewer opens the queue
    response = reviewer.get(reverse("admin:nlu_reviewitem_changelist"))
    html = response.content.decode()
    # then only the open item is listed, with its scores and one-click buttons
    assert [i.pk for i in response.context["cl"].result_list] == [item.pk]
    assert "greeting 0.41 · order_meal 0.22" in html
    assert "Accept greeting</button>" in html
    assert f'formaction="{resolve_url(item, "dismiss")}"' in html
    assert f'<select name="correct_intent_{item.pk}"' in html
    assert f'<option value="{goodbye.pk}">goodbye</option>' in html
    assert 'name="csrfmiddlewaretoken"' in html
    # and the dismissed one is under its filter
    response = reviewer.get(reverse("admin:nlu_reviewitem_changelist"), {"status": "dismissed"})
    assert [i.pk for i in response.context["cl"].result_list] == [done.pk]


def test_the_accept_button(reviewer, item, greeting):
    url = resolve_url(item, "accept") + "?_changelist_filters=suggested_intent%3Dgreeting"
    response = reviewer.post(url)
    assert response.status_code == 302
    assert response["Location"].endswith("/nlu/reviewitem/?suggested_intent=greeting")
    item.refresh_from_db()
    assert (item.status, item.resolved_by) == (ReviewStatus.ACCEPTED, reviewer.user)
    assert greeting.examples.filter(text="hello there").exists()


def test_the_correct_button_takes_the_rows_select(reviewer, item, goodbye):
    response = reviewer.post(
        resolve_url(item, "correct"), {f"correct_intent_{item.pk}": goodbye.pk}
    )
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.status, item.resolved_intent) == (ReviewStatus.CORRECTED, goodbye)


def test_correct_without_a_choice_says_so(reviewer, item):
    response = reviewer.post(resolve_url(item, "correct"), follow=True)
    assert "Choose an intent, then Correct." in response.content.decode()
    item.refresh_from_db()
    assert item.status == ReviewStatus.OPEN


def test_the_dismiss_button_and_a_second_click(reviewer, item):
    reviewer.post(resolve_url(item, "dismiss"))
    response = reviewer.post(resolve_url(item, "accept"), follow=True)
    assert "This item was already dismissed." in response.content.decode()
    item.refresh_from_db()
    assert item.status == ReviewStatus.DISMISSED


def test_the_buttons_only_answer_post_with_csrf(client, item):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    csrf_client = type(client)(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    assert csrf_client.get(resolve_url(item, "dismiss")).status_code == 405
    assert csrf_client.post(resolve_url(item, "dismiss")).status_code == 403
    item.refresh_from_db()
    assert item.status == ReviewStatus.OPEN


def test_viewers_cannot_resolve(client, item):
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_reviewitem"))
    client.force_login(user)
    html = client.get(reverse("admin:nlu_reviewitem_changelist")).content.decode()
    assert "Dismiss</button>" not in html
    assert client.post(resolve_url(item, "dismiss")).status_code == 403


def test_an_unknown_verb_is_not_found(reviewer, item):
    assert reviewer.post(resolve_url(item, "delete")).status_code == 404


def test_bulk_actions(reviewer, item, greeting):
    other = record("something else", suggested_intent="")
    third = record("a third one")
    assert other is not None and third is not None
    changelist = reverse("admin:nlu_reviewitem_changelist")
    # accepting all: the one without a suggestion is left open, with a warning
    response = reviewer.post(
        changelist,
        {"action": "accept_suggestions", "_selected_action": [item.pk, other.pk]},
        follow=True,
    )
    assert "Accepted 1 item(s)." in response.content.decode()
    assert "no suggested intent" in response.content.decode()
    reviewer.post(changelist, {"action": "dismiss_items", "_selected_action": [other.pk, third.pk]})
    statuses = dict(ReviewItem.objects.values_list("pk", "status"))
    assert statuses == {
        item.pk: ReviewStatus.ACCEPTED,
        other.pk: ReviewStatus.DISMISSED,
        third.pk: ReviewStatus.DISMISSED,
    }


def test_review_items_are_read_only_and_cannot_be_added(reviewer, item):
    assert reviewer.get(reverse("admin:nlu_reviewitem_add")).status_code == 403
    response = reviewer.get(reverse("admin:nlu_reviewitem_change", args=[item.pk]))
    assert response.status_code == 200
    assert 'name="text"' not in response.content.decode()
