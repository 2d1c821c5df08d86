"""Ledgerbridge settings: one module, driven by environment variables.

A fresh checkout runs with no configuration (SQLite under var/, a Redis on loopback, DEBUG on).
Production differs only by environment: see README "Configuration".
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEDGERBRIDGE_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
# The emulated vendor systems (sandbox/): for the demo, tests and benches, never production.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)

_DEV_SECRET_KEY = "dev-only-not-secret-ledgerbridge"  # noqa: S105 - refused below unless DEBUG
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEV_SECRET_KEY

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "testserver"}
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
if DEBUG and not set(ALLOWED_HOSTS) <= LOCAL_HOSTS:
    # DEBUG runs with a public development key: never let it serve a real host name.
    raise ImproperlyConfigured("DEBUG is on while ALLOWED_HOSTS names a non-local host.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Fernet key for secrets at rest (connection credentials, worker cost rates). In DEBUG a key is
# derived from SECRET_KEY so that a fresh checkout works; production must set its own.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
if not FIELD_ENCRYPTION_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DEBUG is off.")
    FIELD_ENCRYPTION_KEY = base64.urlsafe_b64encode(
        hashlib.sha256(SECRET_KEY.encode()).digest()
    ).decode()

INSTALLED_APPS = [
    "portal.apps.LedgerbridgeAdminConfig",  # the admin, every page behind portal/admin_site.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "simple_history",
    "axes",
    "sync.apps.SyncConfig",
    "sync.mappings.apps.MappingsConfig",
    "sync.pipeline.apps.PipelineConfig",
    "reconciliation.apps.ReconciliationConfig",
    "portal.apps.PortalConfig",
    *(["sandbox.apps.SandboxConfig"] if SANDBOX_ENABLED else []),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Axes last, as its documentation asks, so that it sees the final response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.navigation",
            ],
        },
    },
]


def _database(url: str) -> dict:
    # Persistent connections (60 s): a webhook or a posting task must not pay a new database
    # connection each time (approval → posting p95 864 ms with 0, 462 ms with 60).
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web server read while a worker writes; IMMEDIATE transactions take the
        # write lock up front instead of failing with "database is locked" half way through.
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": _database(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ledgerbridge.sqlite3'}")),
}
DATABASE_ROUTERS = []
if SANDBOX_ENABLED:
    # The sandbox's emulated vendor systems keep their records apart from Ledgerbridge's own.
    DATABASES["sandbox"] = _database(
        env_str("SANDBOX_DATABASE_URL", f"sqlite:///{VAR_DIR / 'sandbox.sqlite3'}")
    )
    DATABASE_ROUTERS.append("sandbox.router.SandboxRouter")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures per user and address lock them out for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Security headers. Production (DEBUG off) gets HTTPS-only cookies, HSTS and redirects;
# SECURE_SSL_REDIRECT can be turned off where a proxy terminates TLS and redirects itself.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (portal/middleware.py): scripts from this site only, never inline.
# The admin's templates carry `style` attributes and htmx injects its indicator style, hence
# 'unsafe-inline' for styles alone.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# History is read-only (portal/admin_site.py): no "Revert" button on a history form.
SIMPLE_HISTORY_REVERT_DISABLED = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.DjangoModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
}

# Celery: JSON only, bounded tasks, explicit names (see portal/celery.py and sync/tasks.py).
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360)
CELERY_RESULT_EXPIRES = 3600
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A webhook's approval event goes to a queue of its own, served by its own worker (`make run`),
# so that a long sync cycle on the default queue never delays its posting.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_EVENTS_QUEUE = "events"
CELERY_TASK_ROUTES = {"sync.approval_event_process": {"queue": CELERY_EVENTS_QUEUE}}
HEARTBEAT_INTERVAL_SECONDS = env_int("HEARTBEAT_INTERVAL_SECONDS", 15)
# Bearer token a Prometheus scraper presents at /metrics (empty: only signed-in ops users).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# /metrics counts active work exactly at every scrape; the whole-table totals (delivered,
# retries, processed inbox items, sync runs) are computed by a beat task every half of this,
# in seconds, into the cache; a scrape computes them itself only when they are older than this
# (beat not running).
METRICS_TOTALS_SECONDS = env_int("METRICS_TOTALS_SECONDS", 300)
# The cache is the broker's Redis, so every web process reads the same totals.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ledgerbridge",
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}
# Which system owns the project master: "erp" or "psa", by operating model (DESIGN.md).
PROJECT_MASTER_OWNER = env_str("PROJECT_MASTER_OWNER", "erp")

# Structured logs: key=value lines carrying the sync run and correlation id (sync/logging.py);
# LOG_FORMAT=json for a log shipper.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "sync.logging.ContextFilter"}},
    "formatters": {
        "kv": {"()": "sync.logging.KeyValueFormatter"},
        "json": {"()": "sync.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "kv"),
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # One INFO line per HTTP request is noise at delivery rates (and CPU on the sender):
        # deliveries are counted by state in /metrics; failures are logged by
        # sync/connectors/http.py with their correlation id.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
