"""The one settings module. Everything that differs between machines comes from the
environment; docs/configuration.md lists every variable."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import django_stubs_ext

from config.env import (
    env_bool,
    env_choice,
    env_database,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
    fail,
)

# Lets admin and queryset classes be subscripted for the type checker at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

# development: local defaults for every secret and service.
# production: fails closed, every secret and service must be configured.
DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    fail("DEBUG", "must be false in production")

SECRET_KEY = env_secret(
    "SECRET_KEY",
    required=PRODUCTION,
    dev_default="dev-only-secret-key-never-use-in-production-0123456789",
)
# API keys are random, so they are hashed with a fast keyed HMAC rather than a slow
# password hash; this key is kept apart from SECRET_KEY so rotating one leaves the other.
API_KEY_SECRET = env_secret(
    "API_KEY_SECRET",
    required=PRODUCTION,
    dev_default="dev-only-api-key-secret-never-use-in-production-0123",
)
if PRODUCTION and API_KEY_SECRET == SECRET_KEY:
    fail("API_KEY_SECRET", "must differ from SECRET_KEY")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    fail("ALLOWED_HOSTS", "is required in production (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Absolute URL of this deployment, used in e-mails, docs links and seed output.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", ("http", "https")).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "ledger",
    "oauth",
    "payments",
    "developers",
]

MIDDLEWARE = [
    "config.middleware.RequestIdMiddleware",
    "payments.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "developers.context_processors.organizations",
            ],
        },
    },
]

# Database: SQLite under var/ for a laptop; PostgreSQL in production and CI.
DATABASES = {
    "default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'openpay.sqlite3'}"),
}
if PRODUCTION and DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    fail("DATABASE_URL", "must point at PostgreSQL in production")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat write to one file: WAL lets readers run
    # beside a writer, and IMMEDIATE takes the write lock at BEGIN so two writers
    # queue on the busy timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory, so that a worker process started by a test shares it; one per
    # test run, so that two runs side by side never share one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", "") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery's broker and the shared cache. Without REDIS_URL (a laptop with no
# Redis) Celery uses kombu's filesystem transport under var/ and the cache is local.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    REDIS_URL = env_url("REDIS_URL", "", ("redis", "rediss"))
elif PRODUCTION:
    fail("REDIS_URL", "is required in production (redis://host:6379/0)")

BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CELERY_BROKER_URL = "filesystem://localhost//"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# The request log's flush has a queue of its own, which every worker also consumes
# (kombu takes from its queues in turn): a backlog of settlement and delivery runs on
# the default queue cannot hold the flush up, so the lines waiting in Redis stay few.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES: dict[str, dict[str, str]] = {"celery": {}, "requestlog": {}}  # key = name
CELERY_TASK_ROUTES = {"payments.tasks.flush_request_log": {"queue": "requestlog"}}
# The settlement sweep also runs right after a transfer is created (queued on commit);
# this schedule is the safety net that catches anything a lost message left behind.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "settle-transfers": {
        "task": "payments.tasks.settle_transfers",
        "schedule": env_int("SETTLEMENT_INTERVAL_SECONDS", 2, minimum=1),
        "options": {"expires": 10},
    },
    "expire-holds": {
        "task": "payments.tasks.expire_holds",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    "deliver-webhooks": {
        "task": "payments.tasks.deliver_webhooks",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    "report-api-failures": {
        "task": "payments.tasks.report_api_failures",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    "flush-request-log": {
        "task": "payments.tasks.flush_request_log",
        "schedule": 1.0,
        "options": {"expires": 10},
    },
    "purge-old-records": {
        "task": "payments.tasks.purge_old_records",
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Identity.
AUTH_USER_MODEL = "oauth.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out username + address before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Brute-force protection for the portal and the admin: five wrong passwords for one
# username from one address lock that pair out for fifteen minutes. Locking the username
# alone would let anyone lock a victim out from anywhere.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = "OpenPay"
# Nobody, superusers included, reads an authenticator's secret back out of the admin.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Entering /admin/ needs a confirmed authenticator (TOTP, enrolled at /account/security/).
# Off by default in development only because the public contract promises that
# seed_demo's staff user logs into /admin/ with the password it prints; production
# refuses to start with it off.
ADMIN_REQUIRE_TWO_FACTOR = env_bool("ADMIN_REQUIRE_TWO_FACTOR", default=PRODUCTION)
if PRODUCTION and not ADMIN_REQUIRE_TWO_FACTOR:
    fail("ADMIN_REQUIRE_TWO_FACTOR", "must be true in production")
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# OAuth 2.0 provider: our Application model belongs to an organization.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth.Application"
OAUTH2_PROVIDER = {
    # The scopes of docs/api.md, as oauth.models.Scope lists them.
    "SCOPES": {
        "accounts:read": "See your accounts and their balances",
        "accounts:write": "Open new accounts",
        "transactions:read": "See the transactions on your accounts",
        "transfers:read": "See your transfers",
        "transfers:write": "Move money: make, settle, void and refund transfers",
        "webhooks:manage": "Manage webhook endpoints",
        "events:read": "See events",
    },
    "DEFAULT_SCOPES": ["accounts:read"],
    "APPLICATION_ADMIN_CLASS": "oauth.admin.ApplicationAdmin",
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if PRODUCTION else ["https", "http"],
    "ALLOW_URI_WILDCARDS": False,
    # RFC 9700 (OAuth 2.0 Security Best Current Practice): every gate enforced.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": PRODUCTION,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "payments.errors.exception_handler",
}
# Webhook targets on loopback (127.0.0.1, [::1]) for development and tests only.
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", default=not PRODUCTION)
if PRODUCTION and WEBHOOKS_ALLOW_LOOPBACK:
    fail("WEBHOOKS_ALLOW_LOOPBACK", "must be false in production")

# Speeds up the webhook retry schedule (tests: 0.001 makes 5 minutes 0.3 seconds).
WEBHOOK_TIME_SCALE = float(env_int("WEBHOOK_TIME_SCALE_PERMILLE", 1000, minimum=1)) / 1000

# Requests per window (a second by default) per credential (an organization may have its
# own limit) and per client IP.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 100, minimum=1)
API_IP_RATE_LIMIT = env_int("API_IP_RATE_LIMIT", 200, minimum=1)
API_RATE_LIMIT_WINDOW_SECONDS = env_int("API_RATE_LIMIT_WINDOW_SECONDS", 1, minimum=1)
# Largest request body: a batch of 1,000 transfers fits well within it.
DATA_UPLOAD_MAX_MEMORY_SIZE = 512 * 1024
SPECTACULAR_SETTINGS = {
    "TITLE": "OpenPay API",
    "DESCRIPTION": "Balances, transfers, transaction history, events and webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/v1",
    # 3.1 schemas are plain JSON Schema, so tests validate responses with jsonschema.
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "AccountStatus": ["open", "frozen", "closed"],
        "TransferStatus": ["pending", "settled", "failed", "voided", "reversed"],
        "EndpointStatus": ["enabled", "disabled"],
        "DeliveryStatus": ["pending", "succeeded", "failed"],
    },
}

# E-mail: printed to the console in development.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
# With EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend, one file a message.
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "OpenPay <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The portal speaks English and Simplified Chinese: the browser's Accept-Language picks,
# the language switcher (a cookie) overrides. The API speaks English only.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Filled by `collectstatic` in production; development serves from the apps.
STATIC_ROOT = env_str("STATIC_ROOT", str(VAR_DIR / "static")) if PRODUCTION else None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Outside production whitenoise serves straight from the apps, no collectstatic needed.
WHITENOISE_USE_FINDERS = not PRODUCTION

# Production hardening; `manage.py check --deploy` must report nothing.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes logs every login with its path, which for the e-mail verification
        # and invitation pages carries a one-time token: keep only its warnings.
        "axes": {"level": "WARNING"},
    },
}
