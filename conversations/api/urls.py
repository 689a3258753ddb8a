"""Conversations API routes; chatsite/urls.py mounts them under /api/v1/ (namespace "api")."""

from __future__ import annotations

from django.urls import path

from conversations.api import views

urlpatterns = [
    path("conversations", views.ConversationListCreateApi.as_view(), name="conversation-list"),
    path(
        "conversations/<uuid:conversation_id>",
        views.ConversationDetailApi.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<uuid:conversation_id>/close",
        views.ConversationCloseApi.as_view(),
        name="conversation-close",
    ),
    path(
        "conversations/<uuid:conversation_id>/state",
        views.ConversationStateApi.as_view(),
        name="conversation-state",
    ),
    path(
        "conversations/<uuid:conversation_id>/messages",
        views.MessageListCreateApi.as_view(),
        name="message-list",
    ),
    path(
        "conversations/<uuid:conversation_id>/messages/<uuid:message_id>",
        views.MessageDetailApi.as_view(),
        name="message-detail",
    ),
    path(
        "conversations/<uuid:conversation_id>/messages/<uuid:message_id>/events",
        views.ReplyEventsApi.as_view(),
        name="reply-events",
    ),
    path(
        "conversations/<uuid:conversation_id>/pickup-code",
        views.PickupCodeCreateApi.as_view(),
        name="pickup-code-create",
    ),
    path("pickup", views.PickupRedeemApi.as_view(), name="pickup-redeem"),
    path(
        "end-users/<str:end_user>/export", views.EndUserExportApi.as_view(), name="end-user-export"
    ),
    path("end-users/<str:end_user>", views.EndUserEraseApi.as_view(), name="end-user-erase"),
]
