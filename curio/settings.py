"""Curio settings.

Every deployment knob comes from the environment with a safe local default, so a fresh
checkout runs on SQLite + django-q2's ORM broker + local media with no setup at all.
Scale-out: set DATABASE_URL (PostgreSQL) and REDIS_URL (Redis broker); no code changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DEBUG = env_bool("CURIO_DEBUG", True)
# The fallback key only exists so a laptop checkout starts; production must set one.
SECRET_KEY = os.environ.get("CURIO_SECRET_KEY", "curio-local-development-key-change-me-in-production")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ALLOWED_HOSTS = env_list("CURIO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CURIO_CSRF_TRUSTED_ORIGINS", "")

VAR_DIR = Path(os.environ.get("CURIO_VAR_DIR", BASE_DIR / "var"))
# SQLite and local media live here; creating it up front keeps a fresh checkout one command away.
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_q",
    # Nested inlines (question → options → sub-questions) for ontology setup in the admin.
    "nested_admin",
    "catalog",
    "projects",
    "classification",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login; the exceptions (login page, static) are marked in the views.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "curio.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% partialdef %} everywhere without a {% load %} in each template.
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "curio.wsgi.application"

# --- Database -------------------------------------------------------------------------
SQLITE_PATH = VAR_DIR / "curio.sqlite3"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SQLITE_PATH)}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE takes the write lock
    # at BEGIN so two writers queue on the busy timeout instead of failing mid-transaction
    # with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-64000;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Background jobs (django-q2) ------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_CLUSTER: dict[str, object] = {
    "name": os.environ.get("CURIO_Q_NAME", "curio"),
    "workers": env_int("CURIO_Q_WORKERS", 2),
    # A job writes its own status; a task killed mid-way is retried after `retry` seconds,
    # which must exceed `timeout` so a slow job is never run twice at once.
    "timeout": env_int("CURIO_Q_TIMEOUT", 3600),
    "retry": env_int("CURIO_Q_RETRY", 3700),
    "max_attempts": 3,
    "catch_up": False,
    "label": "Background jobs",
    # ORM broker: how often an idle worker looks for new jobs. A submitted job starts within
    # ~50 ms instead of ~200 (a 100k-row job takes half a second, so the wait is a tenth of
    # it). Measured on the 2-core machine: an idle cluster uses ~3 % of a core at 0.05 s
    # against ~1 % at 0.2 s. The Redis broker blocks instead of polling.
    "poll": 0.05,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Auth -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:browse"
LOGOUT_REDIRECT_URL = "login"

# --- i18n / time ----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("CURIO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("CURIO_MEDIA_ROOT", VAR_DIR / "media"))

# Browser imports send many files in one request.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("CURIO_UPLOAD_MAX_FILES", 2000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Curio ----------------------------------------------------------------------------
# Images above this many pixels are refused at import (decompression-bomb guard).
CURIO_MAX_IMAGE_PIXELS = env_int("CURIO_MAX_IMAGE_PIXELS", 89_478_485)
CURIO_THUMBNAIL_SIZE = 256
CURIO_PAGE_SIZE = env_int("CURIO_PAGE_SIZE", 60)
# A bulk job above this many rows is split into batches name, name_2, ...
CURIO_JOB_ROW_LIMIT = env_int("CURIO_JOB_ROW_LIMIT", 100_000)
CURIO_JOB_CHUNK_SIZE = env_int("CURIO_JOB_CHUNK_SIZE", 10_000)
CURIO_CLIP_MODEL = os.environ.get("CURIO_CLIP_MODEL", "ViT-B-32")
CURIO_CLIP_PRETRAINED = os.environ.get("CURIO_CLIP_PRETRAINED", "laion2b_s34b_b79k")
# Embedding jobs: images per model call, and threads decoding the next batches meanwhile.
CURIO_EMBED_BATCH_SIZE = env_int("CURIO_EMBED_BATCH_SIZE", 32)
CURIO_EMBED_DECODE_WORKERS = env_int("CURIO_EMBED_DECODE_WORKERS", 1)
# Pillow draft mode for JPEGs (decode at a reduced DCT scale ≥ the model's input size): much
# faster on large photos; turn off for vectors bit-identical to open_clip's full-decode pipeline.
CURIO_CLIP_DRAFT_DECODE = env_bool("CURIO_CLIP_DRAFT_DECODE", True)
# Vector search: spaces or filtered subsets up to this many vectors are scanned exactly in
# float32; larger ones use an 8-bit scan and an exact re-rank of the shortlist.
CURIO_VECTOR_EXACT_LIMIT = env_int("CURIO_VECTOR_EXACT_LIMIT", 50_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CURIO_LOG_LEVEL", "WARNING")},
}
