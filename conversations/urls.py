from __future__ import annotations

from django.urls import path

from conversations import views

app_name = "conversations"

urlpatterns = [
    path("", views.chat_home, name="home"),
    path("c/new/", views.conversation_new, name="new"),
    path("c/<uuid:conversation_id>/", views.chat_page, name="chat"),
    path("pickup/", views.pickup_page, name="pickup"),
]
