"""The chat page in a real browser against a real daphne server (tests/conftest.py)."""

from __future__ import annotations

import io
import re
import time
import uuid

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from conversations.models import Message, MessageRole, MessageStatus
from testkit.scripted_llm import Script

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHAT_URL = re.compile(r"/c/(?P<id>[0-9a-f-]{36})/$")


def _start_conversation(page, server) -> str:  # type: ignore[no-untyped-def]
    """Open the site as a new visitor and press "New conversation"; returns its public id."""
    page.goto(f"{server.url}/")
    menu = page.get_by_role("button", name="Show conversations")
    if menu.is_visible():  # phone width: the conversation list is a drawer
        menu.click()
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_url(CHAT_URL)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    match = CHAT_URL.search(page.url)
    assert match is not None
    return match["id"]


def test_a_reply_streams_in_and_survives_a_reload_mid_reply(daphne_server, new_page, scripted_llm):
    # given a visitor in a new conversation, and a model that takes ~5 s to answer
    words = [f"word{i}" for i in range(50)]
    scripted_llm.script = Script.words(" ".join(words), token_delay=0.1)
    page = new_page()
    conversation_id = _start_conversation(page, daphne_server)

    # when they send a message
    page.get_by_label("Message", exact=True).fill("Count to fifty, please")
    page.get_by_role("button", name="Send").click()

    # then the reply grows token by token
    reply = page.locator(".msg--assistant").last
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while (not seen or seen[-1] < 12) and time.monotonic() < deadline:
        count = len(reply.locator(".msg-text").inner_text().split()) if reply.count() else 0
        if count and (not seen or count > seen[-1]):
            seen.append(count)
        time.sleep(0.05)
    assert len(seen) >= 3, f"the reply did not arrive incrementally: {seen}"
    assert seen[-1] < len(words)
    page.get_by_label("Message", exact=True).fill("and then?")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()  # one turn at a time

    # when the page is reloaded in the middle of the reply
    response = page.reload()
    assert response is not None
    assert 'data-status="streaming"' in response.text()

    # then the whole reply shows, exactly once, and the conversation can go on
    done = page.locator(".msg--assistant[data-status=complete]")
    expect(done).to_have_count(1, timeout=15_000)
    assert done.locator(".msg-text").inner_text().split() == words
    expect(page.locator(".msg--user")).to_have_count(1)
    expect(page.locator(".msg--user .msg-text")).to_have_text("Count to fifty, please")
    page.get_by_label("Message", exact=True).fill("thanks")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    # and it was stored once; a second reload renders it from the database
    replies = Message.objects.filter(
        conversation__public_id=conversation_id, role=MessageRole.ASSISTANT
    )
    assert [(m.text, m.status) for m in replies] == [(" ".join(words), MessageStatus.COMPLETE)]
    page.reload()
    stored = page.locator(".msg--assistant")
    expect(stored).to_have_count(1)
    assert stored.locator(".msg-text").inner_text().split() == words


def test_the_chat_is_usable_on_a_375px_wide_phone(daphne_server, new_page, scripted_llm):
    # given a phone-sized window
    scripted_llm.script = Script.words("Hi! How can I help?")
    page = new_page(width=375, height=667)

    # when a visitor starts a conversation and sends a message
    _start_conversation(page, daphne_server)
    box = page.get_by_label("Message", exact=True)
    send = page.get_by_role("button", name="Send")
    box.fill("你好")
    send.click()

    # then the input and the send button are on screen, the reply shows, nothing overflows
    expect(page.locator(".msg--assistant[data-status=complete] .msg-text")).to_have_text(
        "Hi! How can I help?"
    )
    for control in (box, send):
        expect(control).to_be_visible()
        expect(control).to_be_in_viewport()
        bounds = control.bounding_box()
        assert bounds is not None and bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 375
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_the_page_drops_repeated_tokens_asks_for_missing_ones_and_escapes_markup(
    daphne_server, new_page
):
    # given an open conversation whose outgoing frames we record instead of sending
    page = new_page()
    _start_conversation(page, daphne_server)
    page.evaluate(
        """() => {
          window.sentFrames = [];
          window.chatsite.send = (frame) => { window.sentFrames.push(frame); return true; };
        }"""
    )
    reply_id = str(uuid.uuid4())

    def feed(frame: dict[str, object]) -> None:
        page.evaluate("(frame) => window.chatsite.dispatch(frame, window.chatsite.ws)", frame)

    # when another tab's message starts a reply whose frames overlap, skip ahead, then catch up
    feed(
        {
            "type": "message.start",
            "message": {
                "id": str(uuid.uuid4()),
                "text": "<b>hi</b>",
                "client_id": str(uuid.uuid4()),
                "sequence": 1,
            },
            "reply_id": reply_id,
            "reply_sequence": 2,
        }
    )
    feed(
        {
            "type": "message.delta",
            "message_id": reply_id,
            "seq": 1,
            "tokens": ["Hello ", "**world**"],
        }
    )
    feed(
        {
            "type": "message.delta",
            "message_id": reply_id,
            "seq": 2,
            "tokens": ["**world**", " <img src=x onerror=alert(1)>"],
        }
    )
    feed({"type": "message.delta", "message_id": reply_id, "seq": 5, "tokens": ["too early"]})
    asked = page.evaluate("window.sentFrames")
    feed(
        {
            "type": "message.delta",
            "message_id": reply_id,
            "seq": 4,
            "tokens": [" [x](javascript:alert(1)) [docs](https://example.com)"],
        }
    )
    feed({"type": "message.delta", "message_id": reply_id, "seq": 5, "tokens": ["!"]})
    feed(
        {
            "type": "message.done",
            "message_id": reply_id,
            "last_seq": 5,
            "status": "complete",
            "error_code": "",
            "is_fallback": False,
        }
    )

    # then each token shows once, the gap was asked for, and no markup from the text runs
    assert asked == [{"type": "resume", "message_id": reply_id, "after_seq": 3}]
    reply = page.locator(f'[data-message-id="{reply_id}"]')
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-text")).to_have_text(
        "Hello world <img src=x onerror=alert(1)> x docs!"
    )
    expect(reply.locator("strong")).to_have_text("world")
    expect(reply.locator("img")).to_have_count(0)
    expect(reply.locator("a")).to_have_count(1)
    link = reply.locator("a")
    expect(link).to_have_attribute("href", "https://example.com")
    expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
    user = page.locator(".msg--user .msg-text")
    expect(user).to_have_text("<b>hi</b>")
    expect(user.locator("b")).to_have_count(0)


def test_a_dropped_socket_reconnects_and_resumes_the_reply(daphne_server, new_page, scripted_llm):
    # given a reply streaming in
    words = [f"w{i}" for i in range(30)]
    scripted_llm.script = Script.words(" ".join(words), token_delay=0.08)
    page = new_page()
    _start_conversation(page, daphne_server)
    page.get_by_label("Message", exact=True).fill("go")
    page.keyboard.press("Enter")
    reply = page.locator(".msg--assistant")
    expect(reply.locator(".msg-text")).to_contain_text("w3")

    # when the connection drops in the middle of it
    page.evaluate("window.chatsite.ws.close()")

    # then the page reconnects by itself and the reply ends complete, every token once
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    assert reply.locator(".msg-text").inner_text().split() == words


def test_a_send_whose_ack_was_lost_is_retried_once_after_reconnecting(
    daphne_server, new_page, scripted_llm
):
    # given a connection that loses every frame about our send, then drops
    scripted_llm.script = Script.words("stored only once", token_delay=0.05)
    page = new_page()
    conversation_id = _start_conversation(page, daphne_server)
    page.evaluate(
        """() => {
          const chat = window.chatsite;
          const dispatch = chat.dispatch.bind(chat);
          let lose = true;
          chat.dispatch = (frame, ws) => {
            if (lose && frame.type.startsWith("message.")) {
              if (frame.type === "message.ack") { lose = false; ws.close(); }
              return;
            }
            dispatch(frame, ws);
          };
        }"""
    )

    # when the user sends a message
    page.get_by_label("Message", exact=True).fill("hello once")
    page.get_by_role("button", name="Send").click()

    # then the page re-sends it with the same client_id after reconnecting: one message, one
    # model call, and the reply shows once
    reply = page.locator(".msg--assistant")
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply.locator(".msg-text")).to_have_text("stored only once")
    expect(page.locator(".msg--user")).to_have_count(1)
    expect(page.locator(".msg--user.is-pending")).to_have_count(0)
    users = Message.objects.filter(conversation__public_id=conversation_id, role=MessageRole.USER)
    assert [m.text for m in users] == ["hello once"]
    assert len(scripted_llm.requests) == 1


def test_a_pickup_code_continues_the_conversation_in_another_browser(
    daphne_server, new_page, scripted_llm
):
    # given a conversation with one exchange in the first browser
    scripted_llm.script = Script.words("Noted, the blue one.")
    page = new_page()
    conversation_id = _start_conversation(page, daphne_server)
    page.get_by_label("Message", exact=True).fill("Remember the blue one")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg--assistant[data-status=complete] .msg-text")).to_have_text(
        "Noted, the blue one."
    )

    # when it asks to continue on another device
    page.get_by_role("button", name="Continue on another device").click()

    # then a dialog shows the code, where to type it and until when
    dialog = page.get_by_role("dialog", name="Continue on another device")
    expect(dialog).to_be_visible()
    code = dialog.locator("#handoff-code")
    expect(code).to_have_text(re.compile(r"^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$"))
    expect(dialog).to_contain_text(f"{daphne_server.url}/pickup/")
    expect(dialog.locator("#handoff-expiry")).to_contain_text("Works once, until")

    # when a second browser (a phone) types it on the pickup page
    phone = new_page(width=375, height=667)
    phone.goto(f"{daphne_server.url}/pickup/")
    phone.get_by_label("Code", exact=True).fill(code.inner_text().lower())
    phone.get_by_role("button", name="Continue", exact=True).click()

    # then it lands on the same conversation with its history, live
    phone.wait_for_url(re.compile(rf"/c/{conversation_id}/$"))
    expect(phone.locator(".msg--user .msg-text")).to_have_text("Remember the blue one")
    expect(phone.locator(".msg--assistant .msg-text")).to_have_text("Noted, the blue one.")
    expect(phone.locator("#conn-status")).to_have_attribute("data-state", "online")


def test_an_order_is_taken_step_by_step_and_personal_data_shows_masked(
    daphne_server, new_page, scripted_llm
):
    # given the demo domain and a labeller that reads the first message as an order
    call_command("load_demo", stdout=io.StringIO())
    scripted_llm.responder = lambda request: Script(
        tokens=["order_meal" if request["messages"][-1]["content"] == "来两份经典套餐" else "none"]
    )
    page = new_page()
    _start_conversation(page, daphne_server)
    replies = page.locator(".msg--assistant[data-status=complete] .msg-text")

    def say(text: str, count: int) -> str:
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_role("button", name="Send").click()
        expect(replies).to_have_count(count)
        return replies.nth(count - 1).inner_text()

    # when the user orders, answers, corrects the phone number and confirms
    assert say("来两份经典套餐", 1) == "请留一个联系电话，方便骑手联系您。"
    assert say("13800138000", 2) == "请问送餐地址是哪里？"
    confirm = say("上海市浦东新区世纪大道100号", 3)
    corrected = say("不对，手机号是 139 1234 5678", 4)
    done = say("对", 5)

    # then each step reads as plain text, masks included (asterisks are not emphasis)
    assert confirm == "请确认：经典套餐 × 2，送到上海市浦东新***，电话138****8000。对吗？"
    assert corrected == (
        "好的，手机号已改为139****5678。请确认：经典套餐 × 2，送到上海市浦东新***，"
        "电话139****5678。对吗？"
    )
    assert done.startswith("好的：经典套餐 × 2，送到上海市浦东新***。")
    assert page.locator(".msg--assistant em, .msg--assistant strong").count() == 0

    # and after a reload the user's own messages show the personal data masked
    page.reload()
    users = page.locator(".msg--user .msg-text")
    expect(users).to_have_count(5)
    assert users.nth(1).inner_text() == "138****8000"
    assert users.nth(2).inner_text() == "上海市浦东新***"
    assert users.nth(3).inner_text() == "不对，手机号是 139****5678"


def test_sensitive_words_are_refused_or_masked_in_the_page(daphne_server, new_page, scripted_llm):
    # given a block word, a mask word, and a model that spells the mask word across tokens
    from nlu.moderation.services import sensitive_word_create

    sensitive_word_create(word="kaboomword", category="abuse", action="block")
    sensitive_word_create(word="scamcoin", category="ads", action="mask")
    scripted_llm.script = Script(tokens=["Never buy ", "sc", "am", "co", "in", ", ok?"])
    page = new_page()
    _start_conversation(page, daphne_server)
    composer = page.get_by_label("Message", exact=True)

    # when the visitor sends a blocked word
    composer.fill("you kaboomword")
    page.get_by_role("button", name="Send").click()

    # then they are told, nothing is shown as sent, and the text is back in the composer
    expect(page.get_by_role("alert")).to_contain_text("not allowed")
    expect(page.locator(".msg--user")).to_have_count(0)
    expect(composer).to_have_value("you kaboomword")

    # when they send a message without it
    composer.fill("should I buy SCAMCOIN?")
    page.get_by_role("button", name="Send").click()

    # then their word is masked once stored, and the reply never shows the word
    reply = page.locator(".msg--assistant[data-status=complete] .msg-text")
    expect(reply).to_have_count(1)
    assert reply.inner_text() == "Never buy ********, ok?"
    page.reload()
    expect(page.locator(".msg--user .msg-text")).to_have_text("should I buy ********?")
    expect(page.locator(".msg--assistant .msg-text")).to_have_text("Never buy ********, ok?")
