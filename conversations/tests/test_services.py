"""Turn bookkeeping: idempotent sends, one turn at a time, the state machine."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from conversations import services, states
from conversations.exceptions import EmptyMessage, IllegalTransition, MessageTooLong, TurnInProgress
from conversations.models import Conversation, ConversationState, Message, MessageStatus
from conversations.selectors import Actor, conversation_get_for_actor, reply_snapshot

pytestmark = pytest.mark.django_db


def test_turn_start_stores_the_message_and_an_empty_streaming_reply(anon_conversation):
    # when
    started = services.turn_start(
        conversation_id=anon_conversation.pk, text="  hello  ", client_id=uuid.uuid4()
    )

    # then
    assert started.created
    assert started.user_message.text == "hello" and started.user_message.sequence == 1
    assert started.reply.status == MessageStatus.STREAMING and started.reply.sequence == 2
    assert started.reply.reply_to == started.user_message
    anon_conversation.refresh_from_db()
    assert anon_conversation.state == ConversationState.CALLING_AI
    assert anon_conversation.title == "hello"
    assert started.prompt[-1] == {"role": "user", "content": "hello"}


def test_turn_start_is_idempotent_per_client_id(anon_conversation):
    client_id = uuid.uuid4()
    first = services.turn_start(
        conversation_id=anon_conversation.pk, text="hi", client_id=client_id
    )
    again = services.turn_start(
        conversation_id=anon_conversation.pk, text="hi", client_id=client_id
    )
    assert not again.created
    assert again.user_message.pk == first.user_message.pk and again.reply.pk == first.reply.pk
    assert Message.objects.count() == 2


def test_the_same_client_id_in_another_conversation_is_another_message(
    anon_conversation, anon_session
):
    other = Conversation.objects.create(session_key=anon_session.session_key)
    client_id = uuid.uuid4()
    services.turn_start(conversation_id=anon_conversation.pk, text="hi", client_id=client_id)
    assert services.turn_start(conversation_id=other.pk, text="hi", client_id=client_id).created


def test_a_second_turn_waits_for_the_first(anon_conversation):
    services.turn_start(conversation_id=anon_conversation.pk, text="one", client_id=uuid.uuid4())
    with pytest.raises(TurnInProgress):
        services.turn_start(
            conversation_id=anon_conversation.pk, text="two", client_id=uuid.uuid4()
        )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", EmptyMessage),
        ("   \n", EmptyMessage),
        (None, EmptyMessage),
        ("x" * 4001, MessageTooLong),
    ],
)
def test_bad_text_is_refused_and_nothing_is_stored(anon_conversation, text, error):
    with pytest.raises(error):
        services.turn_start(conversation_id=anon_conversation.pk, text=text, client_id=uuid.uuid4())
    assert Message.objects.count() == 0


def test_reply_finish_stores_the_reply_once_and_ends_the_turn(anon_conversation):
    started = services.turn_start(
        conversation_id=anon_conversation.pk, text="hi", client_id=uuid.uuid4()
    )
    services.conversation_mark_generating(
        conversation_id=anon_conversation.pk, reply_id=started.reply.pk
    )
    outcome = services.ReplyOutcome(
        text="Hello!", status="complete", token_count=2, ttft_ms=40, total_ms=90
    )
    services.reply_finish(
        reply_id=started.reply.pk, conversation_id=anon_conversation.pk, outcome=outcome
    )
    started.reply.refresh_from_db()
    anon_conversation.refresh_from_db()
    assert (started.reply.text, started.reply.status, started.reply.ttft_ms) == (
        "Hello!",
        "complete",
        40,
    )
    assert anon_conversation.state == ConversationState.WAITING_INPUT
    snapshot = reply_snapshot(anon_conversation, str(started.reply.public_id))
    assert snapshot["text"] == "Hello!" and snapshot["last_seq"] == 2


def test_an_illegal_transition_raises(anon_conversation):
    with pytest.raises(IllegalTransition):
        states.transition(anon_conversation, ConversationState.GENERATING)


def test_conversations_are_scoped_to_their_owner(
    anon_conversation, anon_session, alice, alice_conversation
):
    assert conversation_get_for_actor(
        anon_conversation.public_id, Actor(None, anon_session.session_key)
    )
    assert (
        conversation_get_for_actor(anon_conversation.public_id, Actor(None, "someone-else")) is None
    )
    assert conversation_get_for_actor(anon_conversation.public_id, Actor(None, "")) is None
    assert conversation_get_for_actor(alice_conversation.public_id, Actor(alice.pk, "")) is not None
    assert (
        conversation_get_for_actor(
            alice_conversation.public_id, Actor(None, anon_session.session_key)
        )
        is None
    )
    assert conversation_get_for_actor("not-a-uuid", Actor(alice.pk, "")) is None


def test_the_prompt_keeps_the_newest_history_within_the_character_budget(
    anon_conversation, settings
):
    # given a long earlier exchange
    settings.LLM_HISTORY_CHARS = 100
    Message.objects.create(conversation=anon_conversation, sequence=1, role="user", text="a" * 80)
    Message.objects.create(
        conversation=anon_conversation, sequence=2, role="assistant", text="b" * 30
    )

    # when a new message arrives
    started = services.turn_start(
        conversation_id=anon_conversation.pk, text="c" * 60, client_id=uuid.uuid4()
    )

    # then the oldest message that does not fit is left out, the newest are kept in order
    assert [m["content"] for m in started.prompt[1:]] == ["b" * 30, "c" * 60]


def test_an_overlong_single_message_is_cut_to_the_budget(anon_conversation, settings):
    settings.LLM_HISTORY_CHARS = 50
    started = services.turn_start(
        conversation_id=anon_conversation.pk, text="x" * 40 + "y" * 40, client_id=uuid.uuid4()
    )
    assert started.prompt[-1]["content"] == "x" * 10 + "y" * 40


def test_a_turn_costs_a_fixed_small_number_of_queries(
    anon_conversation, django_assert_max_num_queries
):
    # given some history
    for i in range(6):
        services.turn_start(
            conversation_id=anon_conversation.pk, text=f"m{i}", client_id=uuid.uuid4()
        )
        Message.objects.filter(status="streaming").update(status="complete", text="r")

    # then starting and finishing a turn stay cheap whatever the history (on the one ORM thread);
    # one of the 10 asks for the active intents (none here: the model answers freely)
    with django_assert_max_num_queries(10):
        started = services.turn_start(
            conversation_id=anon_conversation.pk, text="next", client_id=uuid.uuid4()
        )
    outcome = services.ReplyOutcome(
        text="ok", status="complete", token_count=1, ttft_ms=1, total_ms=2
    )
    with django_assert_max_num_queries(5):
        services.reply_finish(
            reply_id=started.reply.pk, conversation_id=anon_conversation.pk, outcome=outcome
        )


ALL_STATES = list(ConversationState.values)


@pytest.mark.parametrize("to", ALL_STATES)
@pytest.mark.parametrize("start", ALL_STATES)
def test_every_move_is_allowed_or_refused_by_the_table(anon_conversation, start, to):
    # given
    anon_conversation.state = start
    legal = to == start or to in states.ALLOWED[start]

    # when / then
    if legal:
        move = states.transition(anon_conversation, to)
        assert anon_conversation.state == to
        assert (move is None) == (to == start)
    else:
        with pytest.raises(IllegalTransition):
            states.transition(anon_conversation, to)
        assert anon_conversation.state == start


def test_a_turn_stores_its_moves_with_timestamps(anon_conversation):
    # given
    started = services.turn_start(
        conversation_id=anon_conversation.pk, text="hi", client_id=uuid.uuid4()
    )
    assert services.conversation_mark_generating(
        conversation_id=anon_conversation.pk, reply_id=started.reply.pk
    )
    first = states.happened(anon_conversation.pk, "calling_ai", "generating", reason="first_token")

    # when
    outcome = services.ReplyOutcome(
        text="ok", status="complete", token_count=1, ttft_ms=1, total_ms=2
    )
    services.reply_finish(
        reply_id=started.reply.pk,
        conversation_id=anon_conversation.pk,
        outcome=outcome,
        from_state="generating",
        moves=(first,),
    )

    # then
    moves = list(anon_conversation.transitions.values_list("from_state", "to_state", "reason"))
    assert moves == [
        ("waiting_input", "calling_ai", "message"),
        ("calling_ai", "generating", "first_token"),
        ("generating", "waiting_input", "reply_done"),
    ]
    times = list(anon_conversation.transitions.values_list("at", flat=True))
    assert times == sorted(times)


def test_a_transition_the_table_forbids_is_not_applied_in_the_database(anon_conversation):
    anon_conversation.state = ConversationState.HANDOFF
    anon_conversation.save()
    assert states.transition_in_db(anon_conversation.pk, ConversationState.GENERATING) is False
    anon_conversation.refresh_from_db()
    assert anon_conversation.state == ConversationState.HANDOFF


def test_the_system_prompt_staff_edit_is_used_from_the_next_turn(anon_conversation, anon_session):
    # given a first turn with the default prompt
    from django.conf import settings

    from conversations.models import AssistantProfile

    first = services.turn_start(
        conversation_id=anon_conversation.pk, text="hi", client_id=uuid.uuid4()
    )
    assert first.prompt[0] == {"role": "system", "content": settings.LLM_SYSTEM_PROMPT}

    # when staff save a new prompt in the admin
    services.assistant_profile_save(AssistantProfile(system_prompt="You sell set meals. Be brief."))

    # then the next turn (any conversation) carries it
    other = Conversation.objects.create(session_key=anon_session.session_key)
    second = services.turn_start(conversation_id=other.pk, text="hi", client_id=uuid.uuid4())
    assert second.prompt[0] == {"role": "system", "content": "You sell set meals. Be brief."}


def test_the_admin_edits_the_system_prompt(admin_client):
    from conversations.models import AssistantProfile

    response = admin_client.post(
        "/admin/conversations/assistantprofile/add/", {"system_prompt": "Be kind."}
    )
    assert response.status_code == 302
    assert AssistantProfile.objects.get().system_prompt == "Be kind."
    assert admin_client.get("/admin/conversations/assistantprofile/add/").status_code == 403


def test_a_late_finish_of_a_recovered_turn_leaves_the_new_turn_alone(anon_conversation, settings):
    # given a turn recovered as stale and a new turn already running
    settings.CHAT_STALE_TURN_SECONDS = 0
    old = services.turn_start(
        conversation_id=anon_conversation.pk, text="one", client_id=uuid.uuid4()
    )
    new = services.turn_start(
        conversation_id=anon_conversation.pk, text="two", client_id=uuid.uuid4()
    )
    assert new.created

    # when the old turn's process finally finishes
    outcome = services.ReplyOutcome(
        text="late", status="complete", token_count=1, ttft_ms=1, total_ms=2
    )
    services.reply_finish(
        reply_id=old.reply.pk, conversation_id=anon_conversation.pk, outcome=outcome
    )

    # then the new turn still owns the conversation
    anon_conversation.refresh_from_db()
    assert anon_conversation.streaming_reply_id == new.reply.pk
    assert anon_conversation.state == ConversationState.CALLING_AI


def test_after_an_idle_spell_a_turn_starts_fresh_but_the_history_stays(anon_conversation, settings):
    # given an earlier exchange, then an hour of silence
    settings.CHAT_SESSION_IDLE_MINUTES = 30
    first = services.turn_start(
        conversation_id=anon_conversation.pk, text="I want two set meals", client_id=uuid.uuid4()
    )
    outcome = services.ReplyOutcome(
        text="Which set?", status="complete", token_count=2, ttft_ms=1, total_ms=2
    )
    services.reply_finish(
        reply_id=first.reply.pk, conversation_id=anon_conversation.pk, outcome=outcome
    )
    Conversation.objects.filter(pk=anon_conversation.pk).update(
        intent="order_meal",
        context={"quantity": "2"},
        last_active=timezone.now() - timezone.timedelta(hours=1),
    )

    # when the user writes again
    again = services.turn_start(
        conversation_id=anon_conversation.pk, text="hello", client_id=uuid.uuid4()
    )

    # then the model does not see the old exchange, the dialogue state is reset, and the
    # messages are all still there
    assert [m["content"] for m in again.prompt[1:]] == ["hello"]
    anon_conversation.refresh_from_db()
    assert (anon_conversation.intent, anon_conversation.context) == ("", {})
    assert anon_conversation.memory_from_sequence == 3
    assert anon_conversation.messages.count() == 4


def test_a_quick_reply_keeps_the_memory(anon_conversation, settings):
    settings.CHAT_SESSION_IDLE_MINUTES = 30
    first = services.turn_start(
        conversation_id=anon_conversation.pk, text="I am Ann", client_id=uuid.uuid4()
    )
    outcome = services.ReplyOutcome(
        text="Hi Ann", status="complete", token_count=2, ttft_ms=1, total_ms=2
    )
    services.reply_finish(
        reply_id=first.reply.pk, conversation_id=anon_conversation.pk, outcome=outcome
    )
    again = services.turn_start(
        conversation_id=anon_conversation.pk, text="who am I?", client_id=uuid.uuid4()
    )
    assert [m["content"] for m in again.prompt[1:]] == ["I am Ann", "Hi Ann", "who am I?"]
