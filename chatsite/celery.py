"""The Celery application; configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

app = Celery("chatsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _warm_up_nlu_on_start(sender: Any = None, **kwargs: Any) -> None:
    """A solo or thread-pool worker loads the intent model before its first task needs it."""
    from celery.concurrency.prefork import TaskPool

    pool_cls = getattr(getattr(sender, "controller", None), "pool_cls", None)
    if isinstance(pool_cls, type) and issubclass(pool_cls, TaskPool):
        return  # the children warm themselves (below); the parent never classifies
    from nlu.classifier.serving import start_warm_up

    start_warm_up()


@worker_process_init.connect
def _warm_up_nlu_in_child(**kwargs: Any) -> None:
    """Each prefork child warms in the background (blocking here would trip Celery's start-up
    timeout for children, 4 s by default)."""
    from nlu.classifier.serving import start_warm_up

    start_warm_up()
