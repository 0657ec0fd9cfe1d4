"""Settings, all from environment variables with safe defaults (README: Configuration).

With nothing set: SQLite under ``var/``, a filesystem Celery broker (no server), the offline
``procedural`` backend and the sandbox in ``auto`` mode.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Importing the settings writes nothing: `make setup` creates var/ and its secret key file.
VAR_DIR = Path(env_str("SCALEENV_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> tuple[str, bool]:
    """(key, ephemeral): the configured key, else the one `make setup` kept in var/secret_key, else a
    random key for this process only (a system check warns: sessions would not survive a restart,
    nor be shared by several server processes)."""
    configured = env_str("DJANGO_SECRET_KEY", "")
    if configured:
        return configured, False
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip(), False
    return secrets.token_urlsafe(50), True


SECRET_KEY, SECRET_KEY_IS_EPHEMERAL = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "django_celery_results",
    "environments",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scaleenv_site.middleware.LoginRequiredForPages",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "scaleenv_site.middleware.PolicyOnceCSPMiddleware",
]

# Flash messages live in the session (read only when a page shows them): the cookie store signed and
# parsed a cookie on every request, API calls included.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "scaleenv_site.urls"
WSGI_APPLICATION = "scaleenv_site.wsgi.application"

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
                "environments.context_processors.sandbox_banner",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'scaleenv.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + immediate transactions: a web process and Celery workers write concurrently. A kept
    # connection holds no lock between transactions, and opening one (with its PRAGMAs) per request
    # costs more than the request's queries.
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    # Django's backend, with writers queued on a lock of their own (see scaleenv_site/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "scaleenv_site.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 60,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
                    if not DEBUG and env_bool("SCALEENV_MANIFEST_STATIC", False)
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)  # set to 1 behind TLS (README: Production)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy: scripts, styles and everything else only from this site (vendored files
# under static/), no inline scripts, handlers or style attributes. The API docs pages alone allow
# their inline start-up script (scaleenv_site/urls.py).
CONTENT_SECURITY_POLICY = {"DIRECTIVES": {
    "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'"], "img-src": ["'self'", "data:"],
    "font-src": ["'self'"], "connect-src": ["'self'"], "object-src": ["'none'"], "base-uri": ["'self'"],
    "form-action": ["'self'"], "frame-ancestors": ["'none'"]}}

# --- Caches: the API's throttle counts. With Redis every server process shares them (production);
# without, each process counts on its own (the embedded default is one process).
_CACHE_URL = env_str("SCALEENV_CACHE_URL", "")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL}
          if _CACHE_URL.startswith("redis") else
          {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 20000}}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scaleenv_site.auth.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["scaleenv_site.api.ReadByRole"],
    "DEFAULT_PARSER_CLASSES": ["scaleenv_site.api.StrictJSONParser"],
    "EXCEPTION_HANDLER": "scaleenv_site.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["scaleenv_site.throttles.UserThrottle", "scaleenv_site.throttles.AnonThrottle",
                                 "scaleenv_site.throttles.ScopedThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("SCALEENV_THROTTLE_USER", "6000/minute"),
                               "anon": env_str("SCALEENV_THROTTLE_ANON", "60/minute"),
                               "session-start": env_str("SCALEENV_THROTTLE_SESSION_START", "120/minute")},
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "scaleenv_site.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ScaleEnv API", "VERSION": "0.1.0", "SERVE_INCLUDE_SCHEMA": False,
    "DESCRIPTION": "Environments, tasks and runs (by role), and the session API agents play tasks through.",
    # The docs are served offline: assets from drf-spectacular-sidecar, no online validator badge, and
    # templates/drf_spectacular/ drops Redoc's web fonts and forbids loading from elsewhere.
    "SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "scaleenv_site.api.add_error_answers"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BatchStatusEnum": "environments.models.Batch.Status", "DomainStatusEnum": "environments.models.Domain.Status",
        "ToolStatusEnum": "environments.models.Tool.Status", "TaskStatusEnum": "tasks.models.Task.Status",
        "TaskKindEnum": "tasks.models.Task.Kind", "StepKindEnum": "tasks.models.RunStep.Kind",
        "TestOutcomeEnum": "environments.models.ToolTest.Outcome", "TerminationEnum": "tasks.models.Run.Termination",
        "ChatRoleEnum": ["system", "user", "assistant", "tool"], "ChatToolCallTypeEnum": ["function"]},
}

# --- Celery (see docs/jobs.md) --------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"  # the filesystem broker's folders (scaleenv_site.celery creates them)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem"):
    CELERY_BROKER_TRANSPORT = "scaleenv_site.broker:Transport"  # kombu's, with atomic writes (see there)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "django-db")
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 20 * 60
CELERY_TASK_TIME_LIMIT = 25 * 60
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_MAX_TASKS_PER_CHILD = 200
CELERY_WORKER_MAX_MEMORY_PER_CHILD = 400_000
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("SCALEENV_EAGER_JOBS", False)
CELERY_TASK_DEFAULT_QUEUE = "exec"
CELERY_TASK_ROUTES = {"scaleenv.llm_*": {"queue": "llm"}}

# --- ScaleEnv --------------------------------------------------------------------------------
SCALEENV_SANDBOX = env_choice("SCALEENV_SANDBOX", "auto", ("auto", "strict"))
SCALEENV_SANDBOX_CALL_TIMEOUT = env_float("SCALEENV_SANDBOX_CALL_TIMEOUT", 2.0)
SCALEENV_DEFAULT_BACKEND = env_choice("SCALEENV_BACKEND", "procedural", ("procedural", "llm"))
SCALEENV_REPAIR_ROUNDS = env_int("SCALEENV_REPAIR_ROUNDS", 3)
SCALEENV_JOB_ATTEMPTS = env_int("SCALEENV_JOB_ATTEMPTS", 3)
SCALEENV_WORKER_WAIT = env_float("SCALEENV_WORKER_WAIT", 5.0)
SCALEENV_ITEM_LEASE_SECONDS = env_int("SCALEENV_ITEM_LEASE_SECONDS", 600)
SCALEENV_GATE_TAU = env_float("SCALEENV_GATE_TAU", 0.5)  # gate threshold τ
SCALEENV_GATE_K = env_int("SCALEENV_GATE_K", 16)  # candidate chains per feasibility estimate g(D)
SCALEENV_H_FLOOR = env_int("SCALEENV_H_FLOOR", 20)  # floor on |H| where the component allows
SCALEENV_SANDBOX_POOL_SIZE = env_int("SCALEENV_SANDBOX_POOL_SIZE", 16)  # idle sandboxes a process keeps (LRU)
# Export files (written by the export job, served only through the permission-checked download view)
SCALEENV_EXPORT_DIR = Path(env_str("SCALEENV_EXPORT_DIR", str(VAR_DIR / "exports")))

# HTTP sessions and the API (README, "Limits")

# --- LLM (the llm backend, LLM agents and users): any OpenAI-compatible endpoint --------------------
def _llm_role_models() -> dict[str, str]:
    prefix = "SCALEENV_LLM_MODEL_"
    return {k[len(prefix):].lower(): v for k, v in os.environ.items() if k.startswith(prefix) and v}


def _llm_prices() -> dict[str, list[float]]:
    raw = env_str("SCALEENV_LLM_PRICES", "") or "{}"
    try:
        prices = json.loads(raw)
        return {str(m): [float(p[0]), float(p[1])] for m, p in prices.items()}
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise ImproperlyConfigured(f"SCALEENV_LLM_PRICES must be JSON like {{\"gpt-4o\": [2.5, 10]}}: {exc}") from exc


SCALEENV_LLM = {
    "base_url": env_str("SCALEENV_LLM_BASE_URL", ""),  # e.g. https://api.openai.com/v1, http://localhost:8000/v1
    "api_key": env_str("SCALEENV_LLM_API_KEY", "") or (
        Path(env_str("SCALEENV_LLM_API_KEY_FILE", "")).read_text().strip() if env_str("SCALEENV_LLM_API_KEY_FILE", "")
        else ""),
    "model": env_str("SCALEENV_LLM_MODEL", ""),
    "role_models": _llm_role_models(),  # SCALEENV_LLM_MODEL_<ROLE>=model, e.g. SCALEENV_LLM_MODEL_CODE_WRITER
    "timeout": env_float("SCALEENV_LLM_TIMEOUT", 120.0),
    "max_retries": env_int("SCALEENV_LLM_MAX_RETRIES", 4),
    "max_backoff": env_float("SCALEENV_LLM_MAX_BACKOFF", 60.0),
    "validation_retries": env_int("SCALEENV_LLM_VALIDATION_RETRIES", 2),
    "concurrency": env_int("SCALEENV_LLM_CONCURRENCY", 4),  # requests in flight per machine
    "slots_dir": env_str("SCALEENV_LLM_SLOTS_DIR", str(VAR_DIR / "llm-slots")),
    "prices": _llm_prices(),  # SCALEENV_LLM_PRICES='{"model": [$ per 1M prompt tokens, $ per 1M completion tokens]}'
    "temperature": env_float("SCALEENV_LLM_TEMPERATURE", 0.0),
}
# Who decides `semantic` texts that only the matcher's overlap rule rejects: the rules alone, or the
# configured LLM (tasks/judge.py; docs/semantic.md, "The LLM judge"). Numbers, names, negations,
# opposites and swaps stay the rules' vetoes either way.
SCALEENV_SEMANTIC_JUDGE = env_choice("SCALEENV_SEMANTIC_JUDGE", "rules", ("rules", "llm"))
if SCALEENV_SEMANTIC_JUDGE == "llm" and not (SCALEENV_LLM["base_url"] and SCALEENV_LLM["model"]):
    raise ImproperlyConfigured("SCALEENV_SEMANTIC_JUDGE=llm needs an LLM: set SCALEENV_LLM_BASE_URL and SCALEENV_LLM_MODEL")
SCALEENV_REVIEW_LEASE_SECONDS = env_int("SCALEENV_REVIEW_LEASE_SECONDS", 600)  # a reviewer's hold on a task
SCALEENV_SESSION_IDLE_SECONDS = env_int("SCALEENV_SESSION_IDLE_SECONDS", 900)
SCALEENV_SESSION_MAX_STEPS = env_int("SCALEENV_SESSION_MAX_STEPS", 200)
SCALEENV_SESSION_MAX_OPEN = env_int("SCALEENV_SESSION_MAX_OPEN", 32)  # open sessions per account
SCALEENV_SESSION_MAX_ARGUMENT_BYTES = env_int("SCALEENV_SESSION_MAX_ARGUMENT_BYTES", 16_384)
SCALEENV_SESSION_MAX_OBSERVATION_CHARS = env_int("SCALEENV_SESSION_MAX_OBSERVATION_CHARS", 16_000)
SCALEENV_SESSION_MAX_MESSAGE_CHARS = env_int("SCALEENV_SESSION_MAX_MESSAGE_CHARS", 8_000)
SCALEENV_SESSION_STATE_CACHE = env_int("SCALEENV_SESSION_STATE_CACHE", 256)  # session states a process keeps
# How long a call waits while other calls on the same session go first before it answers 409.
SCALEENV_SESSION_BUSY_SECONDS = env_float("SCALEENV_SESSION_BUSY_SECONDS", 10.0)
# Plain tool calls and messages (a token, a plainly valid JSON body) are answered without DRF's
# request cycle, with the same answer (tasks/api.py, plain_session_call); off: every call through DRF.
SCALEENV_SESSION_PLAIN_PATH = env_bool("SCALEENV_SESSION_PLAIN_PATH", True)
# A token's account and its permissions are remembered this long per process (0: read every time),
# so a revoked token or a changed role takes effect within it.
SCALEENV_AUTH_CACHE_SECONDS = env_int("SCALEENV_AUTH_CACHE_SECONDS", 30)
SCALEENV_API_MAX_BODY_BYTES = env_int("SCALEENV_API_MAX_BODY_BYTES", 256 * 1024)
SCALEENV_API_MAX_DEPTH = env_int("SCALEENV_API_MAX_DEPTH", 32)
DATA_UPLOAD_MAX_MEMORY_SIZE = SCALEENV_API_MAX_BODY_BYTES + 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("SCALEENV_LOG_LEVEL", "WARNING")},
}
