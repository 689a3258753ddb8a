"""Settings come from the environment; production refuses to start half-configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
    "DJANGO_ALLOWED_HOSTS": "chat.example.com",
    # Valid test-only keys: Fernet (32 url-safe base64 bytes) and a 32+ character HMAC key.
    "PII_ENCRYPTION_KEYS": "Oe6yFSoVVHkzh3xQ7uAl7Ry6kDGzWsiHwxxjMEdAxHo=",
    "PII_INDEX_KEY": "test-only-blind-index-key-0123456789abcdef",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_", "PII_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PROD)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "PII_ENCRYPTION_KEYS", "PII_INDEX_KEY"]
)
def test_production_without_a_required_setting_stops_with_a_clear_message(missing):
    env = {k: v for k, v in PROD.items() if k != missing}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set when DJANGO_DEBUG is false" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PII_ENCRYPTION_KEYS", "not-a-key", "PII_ENCRYPTION_KEYS entry 1 is not a Fernet key"),
        ("PII_INDEX_KEY", "short", "PII_INDEX_KEY must be at least 32 characters"),
    ],
)
def test_a_malformed_pii_key_is_refused(variable, value, message):
    result = run_manage("check", env={**PROD, variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_a_malformed_boolean_is_refused():
    result = run_manage("check", env={"DJANGO_DEBUG": "yes please"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be one of true/false/1/0" in result.stderr


def test_a_broker_without_redis_is_refused():
    result = run_manage("check", env={"CELERY_BROKER_URL": "amqp://localhost"})
    assert result.returncode != 0
    assert "CELERY_BROKER_URL needs REDIS_URL" in result.stderr


def test_nothing_set_gives_the_embedded_default():
    code = (
        "from django.conf import settings as s; import django; django.setup();"
        "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'],"
        " s.CACHES['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER)"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "chatsite.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",
    ], result.stderr


def test_urls_switch_on_postgres_and_redis():
    code = (
        "from django.conf import settings as s; import django; django.setup();"
        "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'],"
        " s.CACHES['default']['BACKEND'], s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": "postgres://u:p@db.example:5432/chat",
        "REDIS_URL": "redis://cache.example:6379/0",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == [
        "django.db.backends.postgresql",
        "channels_redis.core.RedisChannelLayer",
        "django.core.cache.backends.redis.RedisCache",
        "False",
        "redis://cache.example:6379/0",
    ], result.stderr


def test_the_database_pool_is_an_option_for_postgres_only():
    code = "from django.conf import settings as s; import django; django.setup(); print(s.DATABASES['default']['OPTIONS']['pool']['max_size'])"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": "postgres://u@h:5432/d",
        "DATABASE_POOL": "true",
        "DATABASE_POOL_MAX_SIZE": "7",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "7", result.stderr
    result = run_manage("check", env={"DATABASE_POOL": "true"})
    assert result.returncode != 0
    assert "DATABASE_POOL needs a postgres:// DATABASE_URL" in result.stderr
