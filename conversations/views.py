"""The end-user chat pages: server-rendered shell, then the WebSocket does the talking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chatsite.exceptions import ApplicationError
from conversations import pickup, selectors, services

if TYPE_CHECKING:
    from rest_framework.request import Request


def actor_from_request(
    request: HttpRequest | Request, *, create_session: bool = True
) -> selectors.Actor:
    """The request's owner identity; anonymous visitors get a session on first sight.

    Reads that cannot show anything without a session pass ``create_session=False``.
    """
    if request.user.is_authenticated:
        return selectors.Actor(
            user_id=request.user.pk, session_key=request.session.session_key or ""
        )
    if create_session and not request.session.session_key:
        request.session.save()
    return selectors.Actor(user_id=None, session_key=request.session.session_key or "")


@require_GET
def chat_home(request: HttpRequest) -> HttpResponse:
    """Open the most recent conversation, or an empty chat ready to start one."""
    actor = actor_from_request(request)
    latest = selectors.conversation_list_for_actor(actor).first()
    if latest is not None:
        return redirect("conversations:chat", conversation_id=latest.public_id)
    return render(request, "conversations/chat.html", {"conversations": [], "conversation": None})


@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    """Start a conversation and open it."""
    conversation = services.conversation_create(actor=actor_from_request(request))
    return redirect("conversations:chat", conversation_id=conversation.public_id)


@require_GET
def chat_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """One conversation with its history; a reply still streaming resumes over the socket."""
    actor = actor_from_request(request)
    conversation = selectors.conversation_get_for_actor(conversation_id, actor)
    if conversation is None:
        raise Http404("No such conversation")
    context = {
        "conversation": conversation,
        "conversations": selectors.conversation_list_for_actor(actor)[:50],
        "messages": selectors.message_list(conversation),
        "can_hand_on": selectors.actor_owns(conversation, actor),
    }
    return render(request, "conversations/chat.html", context)


# What people see for each refusal of the pickup form (codes from conversations/pickup.py).
PICKUP_ERRORS = {
    "pickup_code_invalid": _("That code doesn't match any conversation. Check it and try again."),
    "pickup_code_expired": _("That code has expired. Make a new one on your other device."),
    "pickup_code_used": _("That code has already been used. Make a new one on your other device."),
    "too_many_attempts": _("Too many wrong codes. Wait 15 minutes, then try again."),
    "session_required": _("Your browser refused the session cookie. Allow cookies and try again."),
}


@require_http_methods(["GET", "POST"])
def pickup_page(request: HttpRequest) -> HttpResponse:
    """Type a code from another device to continue its conversation here."""
    context: dict[str, object] = {"code": "", "error": ""}
    if request.method == "POST":
        code = request.POST.get("code", "")[:32]
        try:
            conversation = pickup.pickup_code_redeem(code=code, actor=actor_from_request(request))
        except ApplicationError as exc:
            context = {"code": code, "error": PICKUP_ERRORS.get(exc.code, exc.message)}
            # The form re-renders as any refused form does (the API's 404/409 are for programs).
            status = 429 if exc.status == 429 else 400
            return render(request, "conversations/pickup.html", context, status=status)
        return redirect("conversations:chat", conversation_id=conversation.public_id)
    return render(request, "conversations/pickup.html", context)
