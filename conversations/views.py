"""The end-user chat pages: server-rendered shell, then the WebSocket does the talking."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from conversations import selectors, services


def _actor(request: HttpRequest) -> selectors.Actor:
    """The request's owner identity; anonymous visitors get a session on first sight."""
    if request.user.is_authenticated:
        return selectors.Actor(
            user_id=request.user.pk, session_key=request.session.session_key or ""
        )
    if not request.session.session_key:
        request.session.save()
    return selectors.Actor(user_id=None, session_key=request.session.session_key or "")


@require_GET
def chat_home(request: HttpRequest) -> HttpResponse:
    """Open the most recent conversation, or an empty chat ready to start one."""
    actor = _actor(request)
    latest = selectors.conversation_list_for_actor(actor).first()
    if latest is not None:
        return redirect("conversations:chat", conversation_id=latest.public_id)
    return render(request, "conversations/chat.html", {"conversations": [], "conversation": None})


@require_POST
def conversation_new(request: HttpRequest) -> HttpResponse:
    """Start a conversation and open it."""
    conversation = services.conversation_create(actor=_actor(request))
    return redirect("conversations:chat", conversation_id=conversation.public_id)


@require_GET
def chat_page(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """One conversation with its history; a reply still streaming resumes over the socket."""
    actor = _actor(request)
    conversation = selectors.conversation_get_for_actor(conversation_id, actor)
    if conversation is None:
        raise Http404("No such conversation")
    context = {
        "conversation": conversation,
        "conversations": selectors.conversation_list_for_actor(actor)[:50],
        "messages": selectors.message_list(conversation),
    }
    return render(request, "conversations/chat.html", context)
