"""Sensitive words over the API (scope admin-data): the moderation services' rules and refresh."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from integrations.keys import api_key_revoke
from integrations.models import ApiKey
from nlu.models import SensitiveWord
from nlu.moderation import registry
from nlu.moderation.services import sensitive_word_create
from nlu.tests.api_helpers import call, error_code, follow_pages

pytestmark = pytest.mark.django_db

SPAM = {"word": "Spam Offer", "category": "ads", "action": "block", "language": "EN"}


@pytest.fixture
def fresh_registry(settings):  # type: ignore[no-untyped-def]
    """A matcher rebuilt only when the words' version changes (as in production)."""
    settings.MODERATION_CHECK_SECONDS = 0
    settings.MODERATION_RESYNC_SECONDS = 3600
    registry.reset()
    cache.delete(registry.VERSION_KEY)
    yield
    registry.reset()
    cache.delete(registry.VERSION_KEY)


def word(text: str, **fields) -> SensitiveWord:  # type: ignore[no-untyped-def]
    return sensitive_word_create(word=text, **fields)


def test_a_word_is_added_cleaned_by_the_service(client, admin_key):
    response = call(client, "post", "/sensitive-words", admin_key, SPAM)

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("word", "normalised", "category", "action", "language")} == {
        "word": "Spam Offer",
        "normalised": "spamoffer",
        "category": "ads",
        "action": "block",
        "language": "en",
    }
    assert (body["is_active"], body["source"], body["note"]) == (True, "api", "")
    assert call(client, "get", f"/sensitive-words/{body['id']}", admin_key).json() == body


def test_defaults_are_the_services(client, admin_key):
    body = call(client, "post", "/sensitive-words", admin_key, {"word": "darn"}).json()
    assert (body["category"], body["action"], body["language"]) == ("other", "mask", "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"word": "   "}, "word"),
        ({"word": "..."}, "word"),  # normalises to nothing: could never match
        ({"word": "tab\there"}, "word"),
        ({"word": "x" * 65}, "word"),
        ({"word": "x" + " " * 64}, "word"),  # the limit counts what was sent
        ({"word": "spam", "language": "english!"}, "language"),
        ({"word": "spam", "category": "rude"}, "category"),
        ({"word": "spam", "action": "delete"}, "action"),
        ({"word": "spam", "note": "nul\x00"}, "note"),
        ({"word": "spam", "is_active": "true"}, "is_active"),
        ({"word": 42}, "word"),
        ({}, "word"),
    ],
)
def test_an_invalid_word_is_refused_by_field(client, admin_key, body, field):
    response = call(client, "post", "/sensitive-words", admin_key, body)
    assert (response.status_code, error_code(response)) == (400, "validation_error")
    assert field in response.json()["detail"]["fields"]
    assert not SensitiveWord.objects.exists()


def test_a_word_listed_already_in_its_category_is_a_duplicate(client, admin_key):
    word("spam offer", category="ads")
    response = call(client, "post", "/sensitive-words", admin_key, {**SPAM, "word": "SPAM-OFFER"})
    assert (response.status_code, error_code(response)) == (409, "sensitive_word_exists")
    assert "already listed" in response.json()["detail"]["fields"]["word"][0]

    # another category is another row
    response = call(client, "post", "/sensitive-words", admin_key, {**SPAM, "category": "abuse"})
    assert response.status_code == 201


def test_a_retried_add_returns_the_first_response_and_adds_once(client, admin_key):
    first = call(client, "post", "/sensitive-words", admin_key, SPAM, idempotency_key="w-1")
    retry = call(client, "post", "/sensitive-words", admin_key, SPAM, idempotency_key="w-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert SensitiveWord.objects.count() == 1

    other = {**SPAM, "word": "free money"}
    response = call(client, "post", "/sensitive-words", admin_key, other, idempotency_key="w-1")
    assert (response.status_code, error_code(response)) == (422, "idempotency_key_reused")
    assert SensitiveWord.objects.count() == 1


def test_a_patch_changes_the_given_fields_through_the_service(client, admin_key):
    spam = word("spam offer", category="ads", note="from a complaint")
    path = f"/sensitive-words/{spam.pk}"

    response = call(client, "patch", path, admin_key, {"action": "flag", "is_active": False})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["action"], body["is_active"], body["note"]) == ("flag", False, "from a complaint")

    # renaming onto a word listed already is refused
    word("free money", category="ads")
    response = call(client, "patch", path, admin_key, {"word": "Free Money"})
    assert (response.status_code, error_code(response)) == (409, "sensitive_word_exists")
    response = call(client, "patch", path, admin_key, {"category": "nonsense"})
    assert response.status_code == 400 and "category" in response.json()["detail"]["fields"]


def test_a_word_is_deleted(client, admin_key):
    spam = word("spam offer")
    response = call(client, "delete", f"/sensitive-words/{spam.pk}", admin_key)
    assert response.status_code == 204 and not SensitiveWord.objects.exists()

    for word_id in (spam.pk, 10**30, 0):
        for method in ("get", "patch", "delete"):
            response = call(client, method, f"/sensitive-words/{word_id}", admin_key, {})
            code = error_code(response)
            assert (response.status_code, code) == (404, "sensitive_word_not_found"), word_id


@pytest.mark.django_db(transaction=True)
def test_every_write_reaches_the_matcher(client, admin_key, fresh_registry):
    # given a matcher built before the word exists
    assert not registry.current_matcher().apply("a spam offer here").hits

    # when the word is added, it is blocked at once
    body = call(client, "post", "/sensitive-words", admin_key, SPAM).json()
    assert registry.current_matcher().apply("a spam offer here").blocked

    # a change of action is seen too
    call(client, "patch", f"/sensitive-words/{body['id']}", admin_key, {"action": "mask"})
    verdict = registry.current_matcher().apply("a spam offer here")
    assert not verdict.blocked and "spam offer" not in verdict.text

    # and once deleted it matches nothing
    call(client, "delete", f"/sensitive-words/{body['id']}", admin_key)
    assert not registry.current_matcher().apply("a spam offer here").hits


def test_the_list_filters_and_searches(client, admin_key):
    word("spam offer", category="ads", action="block")
    word("free money", category="ads", action="mask", is_active=False)
    word("idiot", category="abuse", action="mask", note="insult")

    def words(query: str) -> list[str]:
        response = call(client, "get", f"/sensitive-words?{query}", admin_key)
        assert response.status_code == 200, response.content
        return [w["word"] for w in response.json()["results"]]

    assert words("") == ["spam offer", "free money", "idiot"]
    assert words("category=ads") == ["spam offer", "free money"]
    assert words("category=ads&action=mask") == ["free money"]
    assert words("active=false") == ["free money"]
    assert words("active=true&category=abuse") == ["idiot"]
    assert words("q=INSULT") == ["idiot"]
    assert words("q=S.P.A.M") == ["spam offer"]  # the matcher's normalisation


@pytest.mark.parametrize(
    "query",
    [
        "category=rude",
        "category=",
        "action=ban",
        "active=yes",
        "active=1",
        "active=",
        "q=" + "x" * 101,
        "q=a%00b",
    ],
)
def test_a_bad_filter_is_an_invalid_parameter(client, admin_key, query):
    response = call(client, "get", f"/sensitive-words?{query}", admin_key)
    assert (response.status_code, error_code(response)) == (400, "invalid_parameter")


def test_words_are_listed_a_page_at_a_time(client, admin_key, django_assert_max_num_queries):
    for i in range(5):
        word(f"word{i}")
    with django_assert_max_num_queries(5):
        call(client, "get", "/sensitive-words?limit=2", admin_key)
    pages = follow_pages(client, "/sensitive-words?category=other", admin_key, limit=2)
    assert [[w["word"] for w in page] for page in pages] == [
        ["word0", "word1"],
        ["word2", "word3"],
        ["word4"],
    ]


def test_words_need_the_admin_data_scope(client, nlu_key):
    spam = word("spam offer")
    assert call(client, "get", "/sensitive-words", None).status_code == 401
    for method, path in [
        ("get", "/sensitive-words"),
        ("post", "/sensitive-words"),
        ("get", f"/sensitive-words/{spam.pk}"),
        ("patch", f"/sensitive-words/{spam.pk}"),
        ("delete", f"/sensitive-words/{spam.pk}"),
    ]:
        response = call(client, method, path, nlu_key, {"word": "x"})
        assert (response.status_code, error_code(response)) == (403, "scope_missing"), path
    assert list(SensitiveWord.objects.values_list("word", flat=True)) == ["spam offer"]


def test_a_revoked_key_is_refused_on_its_next_request(client, admin_key):
    assert call(client, "get", "/sensitive-words", admin_key).status_code == 200
    api_key_revoke(ApiKey.objects.get())
    response = call(client, "post", "/sensitive-words", admin_key, SPAM)
    assert (response.status_code, error_code(response)) == (401, "api_key_revoked")
    assert not SensitiveWord.objects.exists()
