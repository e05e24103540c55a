"""Joliba settings: one file, every value from the environment, defaults that run the quickstart.

Production (JOLIBA_ENV=production) refuses to start on a default secret or with DEBUG on.
Any variable can also be read from a file named by VAR_FILE (Docker/systemd secrets).
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent  # platform/
REPO_DIR = BASE_DIR.parent


def env(name: str, default: str = "") -> str:
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


JOLIBA_ENV = env("JOLIBA_ENV", "development")
PRODUCTION = JOLIBA_ENV == "production"
DATA_DIR = Path(env("JOLIBA_DATA_DIR", str(REPO_DIR / "var")))

_DEFAULT_SECRET = "dev-only-insecure-secret-key-change-me"
SECRET_KEY = env("SECRET_KEY", _DEFAULT_SECRET)
DEBUG = env_bool("DEBUG", not PRODUCTION)
if PRODUCTION and (SECRET_KEY == _DEFAULT_SECRET or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured("Production needs SECRET_KEY (32+ characters, not the default).")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("Production refuses to run with DEBUG on.")

ALLOWED_HOSTS = [h for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]
if PRODUCTION:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

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
    "axes",  # auth: lockout on repeated failures (accounts/README in docs/authentication.md)
    "django_otp",  # auth: second factor (OTPMiddleware, devices)
    "django_otp.plugins.otp_static",  # auth: backup codes
    "django_otp.plugins.otp_totp",  # auth: TOTP, works on a phone with no network
    "two_factor",  # auth: login / enrolment / backup-code views (templates overridden in accounts/)
    "pgtrigger",  # integrity: database triggers (signed report versions immutable, signer a radiologist)
    "accounts",
    "studies",
    "ingest",
    "reports",
    "worklist",
    "preread",
    "uploads",
    "viewer",
    "assignment",
    "alerts",
    "tokens",
    "audit",
    "privacy",
    "health",  # ops: health endpoints, worker/beat heartbeats, backups (docs/operations.md)
    "dashboard",  # ops: the coordinator's dashboard (docs/dashboard.md)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",  # harden: CONTENT_SECURITY_POLICY below; after WhiteNoise (static)
    "joliba.security.HardeningMiddleware",  # harden: no-store, no method override, logout clears cache
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ingest.quota.RequestSizeLimit",  # limits: a multipart body over INGEST_MAX_REQUEST_BYTES refused unread
    "django_otp.middleware.OTPMiddleware",  # auth: request.user.is_verified()
    "accounts.middleware.IdleSessionMiddleware",  # auth: idle expiry, absolute session age
    "accounts.middleware.SecondFactorMiddleware",  # auth: radiologists/admins verified before anything
    "axes.middleware.AxesMiddleware",  # auth: a locked (user, address) gets the French lockout page
    "audit.middleware.AuditMiddleware",  # audit: who read which study, image, PDF (needs request.user)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "joliba.urls"
WSGI_APPLICATION = "joliba.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "joliba" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "joliba.context_processors.navigation",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{DATA_DIR / 'joliba.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The quickstart's worker and web process share the file: wait instead of failing on a lock.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
if env("TEST_DATABASE_NAME"):  # lets parallel test runs share one PostgreSQL server
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("Français")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "joliba" / "locale"]
TIME_ZONE = env("TIME_ZONE", "Africa/Bamako")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "joliba" / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed (gzip) by collectstatic in every setting, so the quickstart sends what
    # production sends (/send/ is 31 kB compressed, 107 kB not); hashed names in production only.
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Static files come from STATIC_ROOT as collectstatic left them (make run and make test collect
# first); serving the source folders instead would skip the compressed copies.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", False)
WHITENOISE_MAX_AGE = 31536000 if PRODUCTION else 3600

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that a missing or refused token answers 401 with WWW-Authenticate (docs/tokens.md).
        "tokens.authentication.MachineTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Joliba API",
    "DESCRIPTION": "Teleradiology: studies from regional sites, remote reading, reports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# Orthanc: the central archive, reachable by the platform only.
ORTHANC_URL = env("ORTHANC_URL", "http://127.0.0.1:8042")
ORTHANC_USERNAME = env("ORTHANC_USERNAME", "joliba")
ORTHANC_PASSWORD = env("ORTHANC_PASSWORD", "")

# Ingest: untrusted files are parsed in a child process with these limits before Orthanc sees them.
INGEST_MAX_FILE_BYTES = int(env("INGEST_MAX_FILE_BYTES", str(2 * 1024**3)))
INGEST_MAX_PIXELS = int(env("INGEST_MAX_PIXELS", str(400_000_000)))
INGEST_CHILD_MEMORY_BYTES = int(env("INGEST_CHILD_MEMORY_BYTES", str(1536 * 1024**2)))
INGEST_CHILD_CPU_SECONDS = int(env("INGEST_CHILD_CPU_SECONDS", "30"))
# Warm checker children per worker process, each replaced after this many files (ingest.validator_pool).
INGEST_VALIDATOR_POOL_SIZE = int(env("INGEST_VALIDATOR_POOL_SIZE", "2"))
INGEST_VALIDATOR_FILES_PER_CHILD = int(env("INGEST_VALIDATOR_FILES_PER_CHILD", "200"))
INGEST_SPOOL_DIR = Path(env("INGEST_SPOOL_DIR", str(DATA_DIR / "spool")))
# A sending without manifest that never settled after this long was cut by a dead process: the
# changes feed may then announce its study complete once Orthanc says it is stable.
INGEST_ABANDONED_SUBMISSION_SECONDS = int(env("INGEST_ABANDONED_SUBMISSION_SECONDS", "3600"))
# Resumable (tus) uploads: the web process writes the spool, the worker reads it: share it.
UPLOADS_MAX_BYTES = int(env("UPLOADS_MAX_BYTES", str(INGEST_MAX_FILE_BYTES)))
UPLOADS_SITE_QUOTA_BYTES = int(env("UPLOADS_SITE_QUOTA_BYTES", str(20 * 1024**3)))
# The page's PATCH size: big chunks mean fewer round trips on a 300 ms link, and a dropped PATCH
# costs nothing because the server keeps every byte it received (uploads.transfers.receive_chunk).
UPLOADS_PAGE_CHUNK_BYTES = int(env("UPLOADS_PAGE_CHUNK_BYTES", str(1024 * 1024)))
UPLOADS_EXPIRE_SECONDS = int(env("UPLOADS_EXPIRE_SECONDS", str(7 * 24 * 3600)))
# A finalisation that finds its transfer held by another process asks again this soon, this often.
UPLOADS_BUSY_RETRY_SECONDS = float(env("UPLOADS_BUSY_RETRY_SECONDS", "5"))
UPLOADS_BUSY_RETRIES = int(env("UPLOADS_BUSY_RETRIES", "120"))
DATA_UPLOAD_MAX_NUMBER_FILES = 2000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2

# Celery: Redis in production and tests; a file-system transport (no server) for the quickstart.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = DATA_DIR / "celery-queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(DATA_DIR / "celery-processed"),
        "control_folder": str(DATA_DIR / "celery-control"),
        "store_processed": False,
    }
CELERY_TASK_ACKS_LATE = True  # a killed worker's task is redelivered, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE = {
    "follow-orthanc-changes": {
        "task": "ingest.tasks.follow_orthanc_changes",
        "schedule": float(env("ORTHANC_CHANGES_POLL_SECONDS", "5")),
    },
    "requeue-stalled-studies": {  # the database, not the broker, is the record of pending work
        "task": "preread.tasks.requeue_stalled",
        "schedule": 300.0,
    },
    "make-missing-renditions": {  # instances recorded while no worker ran, or before the viewer
        "task": "viewer.tasks.make_missing_renditions",
        "schedule": float(env("RENDITIONS_BACKFILL_SECONDS", "300")),
    },
    "sweep-claims": {  # claims past their time back to the queue; push mode: give waiting cases
        "task": "assignment.tasks.sweep_claims",
        "schedule": float(env("ASSIGNMENT_SWEEP_SECONDS", "60")),
    },
    "export-pending-reports": {  # signed reports owed to Orthanc whose task was lost
        "task": "reports.tasks.export_pending_reports",
        "schedule": float(env("REPORTS_EXPORT_SWEEP_SECONDS", "120")),
    },
    "alerts-tick": {  # due sends, retries, escalations, SLA checks: rows, never broker countdowns
        "task": "alerts.tasks.run_due_alerts",
        "schedule": float(env("ALERTS_TICK_SECONDS", "10")),
    },
    "sweep-resumable-uploads": {  # expire stale transfers, finish those a dead process left
        "task": "uploads.tasks.sweep_transfers",
        "schedule": float(env("UPLOADS_SWEEP_SECONDS", "600")),
    },
}

# AI pre-read: every package (manifest.json + model.onnx) under this folder is enabled.
JOLIBA_MODELS_DIR = Path(env("JOLIBA_MODELS_DIR", str(DATA_DIR / "models")))
# An age-restricted model refuses images without an age unless named here (comma-separated
# model names): a deliberate, per-model decision of the deployment.
JOLIBA_MODELS_ALLOW_UNKNOWN_AGE = [m for m in env("JOLIBA_MODELS_ALLOW_UNKNOWN_AGE", "").split(",") if m]
JOLIBA_ORT_THREADS = int(env("JOLIBA_ORT_THREADS", "2"))  # onnxruntime threads per worker process
PREREAD_MAX_PIXELS = int(env("PREREAD_MAX_PIXELS", "36000000"))  # decoded size bound, checked first

# Viewer renditions (preview + lossless full fidelity), made once per instance by the worker and
# served by the web process: both must see this folder. Content-addressed, never rewritten.
JOLIBA_RENDITIONS_ROOT = Path(env("JOLIBA_RENDITIONS_ROOT", str(DATA_DIR / "renditions")))
RENDITIONS_MAX_PIXELS = int(env("RENDITIONS_MAX_PIXELS", str(PREREAD_MAX_PIXELS)))  # per frame
RENDITIONS_MAX_FRAMES = int(env("RENDITIONS_MAX_FRAMES", "2000"))

# Assignment (docs/lifecycle-and-access.md): "pull" (radiologists claim from the shared queue) or
# "push" (the platform gives each case to the least-loaded competent radiologist on shift); a
# claimed case not signed within the timeout goes back to the queue (0: never).
ASSIGNMENT_MODE = env("ASSIGNMENT_MODE", "pull")
if ASSIGNMENT_MODE not in ("pull", "push"):
    raise ImproperlyConfigured("ASSIGNMENT_MODE must be pull or push")
ASSIGNMENT_CLAIM_TIMEOUT_MINUTES = int(env("ASSIGNMENT_CLAIM_TIMEOUT_MINUTES", "120"))

# Worklist order: JSON objects merged over the defaults in worklist/ranking.py (their one home).
WORKLIST_SLA_MINUTES = json.loads(env("WORKLIST_SLA_MINUTES", "{}"))
WORKLIST_WEIGHTS = json.loads(env("WORKLIST_WEIGHTS", "{}"))
WORKLIST_REFRESH_SECONDS = int(env("WORKLIST_REFRESH_SECONDS", "30"))  # the page's fragment refresh
WORKLIST_RANK_CACHE_SECONDS = float(env("WORKLIST_RANK_CACHE_SECONDS", "5"))  # shared order; 0: off

STALLED_STUDY_SECONDS = int(env("STALLED_STUDY_SECONDS", "600"))

EMAIL_BACKEND = env(  # production: a real mail server (auth refuses the others below)
    "EMAIL_BACKEND",
    f"django.core.mail.backends.{'smtp' if PRODUCTION else 'console'}.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Joliba <alertes@joliba.invalid>")

# Alerts (docs/alerts.md). SMS backend: kannel (default in production), africastalking, or file
# (the quickstart: messages appended to a file, nothing leaves the machine).
ALERTS_SMS_BACKEND = env("ALERTS_SMS_BACKEND", "kannel" if PRODUCTION else "file")
ALERTS_SMS_FILE = Path(env("ALERTS_SMS_FILE", str(DATA_DIR / "sms-outbox.txt")))
ALERTS_PUBLIC_URL = env("ALERTS_PUBLIC_URL", "http://127.0.0.1:8000")  # short links and Kannel callbacks
ALERTS_CALLBACK_URL = env("ALERTS_CALLBACK_URL", ALERTS_PUBLIC_URL)  # where Kannel reaches us
ALERTS_CALLBACK_TOKEN = env("ALERTS_CALLBACK_TOKEN", "")  # shared with Kannel's get-url / dlr-url
if PRODUCTION and ALERTS_SMS_BACKEND == "kannel" and len(ALERTS_CALLBACK_TOKEN) < 16:
    # Without a token the callbacks trust loopback, which behind a proxy on the same host is
    # everyone: a forged SMS reply would acknowledge an alert.
    raise ImproperlyConfigured("Production with Kannel needs ALERTS_CALLBACK_TOKEN (16+ characters).")
KANNEL_SENDSMS_URL = env("KANNEL_SENDSMS_URL", "http://127.0.0.1:13013/cgi-bin/sendsms")
KANNEL_USERNAME = env("KANNEL_USERNAME", "joliba")
KANNEL_PASSWORD = env("KANNEL_PASSWORD", "")
KANNEL_SENDER = env("KANNEL_SENDER", "")
AFRICASTALKING_USERNAME = env("AFRICASTALKING_USERNAME", "sandbox")
AFRICASTALKING_API_KEY = env("AFRICASTALKING_API_KEY", "")
AFRICASTALKING_SENDER = env("AFRICASTALKING_SENDER", "")
AFRICASTALKING_API_URL = env("AFRICASTALKING_API_URL", "")  # empty: the client's own endpoint
# Minutes without acknowledgement before the next person in the chain, per category.
ALERTS_ACK_MINUTES = {
    "critical": 15.0,
    "urgent": 60.0,
    "significant": 24 * 60.0,
    **json.loads(env("ALERTS_ACK_MINUTES", "{}")),
}
ALERTS_SLA_WARNING_MINUTES = float(env("ALERTS_SLA_WARNING_MINUTES", "15"))  # before the breach
ALERTS_QUIET_HOURS = env("ALERTS_QUIET_HOURS", "21:00-07:00")  # non-critical alerts wait; "" for none
ALERTS_MAX_ATTEMPTS = int(env("ALERTS_MAX_ATTEMPTS", "8"))
ALERTS_RETRY_BASE_SECONDS = float(env("ALERTS_RETRY_BASE_SECONDS", "30"))
ALERTS_GATEWAY_RETRY_MAX_SECONDS = float(env("ALERTS_GATEWAY_RETRY_MAX_SECONDS", "30"))
ALERTS_SEND_LEASE_SECONDS = float(env("ALERTS_SEND_LEASE_SECONDS", "120"))
ALERTS_DRAIN_BATCH = int(env("ALERTS_DRAIN_BATCH", "500"))
ALERTS_DEFAULT_PHONE_PREFIX = env("ALERTS_DEFAULT_PHONE_PREFIX", "+223")  # Mali
# Fault injection for the crash tests only: sleep between the gateway's answer and its record.
ALERTS_FAULT_PAUSE_AFTER_HANDOFF_S = float(env("ALERTS_FAULT_PAUSE_AFTER_HANDOFF_S", "0"))

# LOGGING: built by health.logs below (JSON in production, patient identifiers masked).

# --- limits: upload quotas, sizes, expiry and rate limits on every ingest path (ingest/quota.py) ---
# A site's spool quota (UPLOADS_SITE_QUOTA_BYTES, above) counts bytes really received, never declared.
# Bytes one site may bring in per local day, every route together (tus, form, API, C-STORE); 0: none.
INGEST_SITE_DAILY_BYTES = int(env("INGEST_SITE_DAILY_BYTES", str(50 * 1024**3)))
# One form or multipart API request (a whole study): refused above this before its body is read.
INGEST_MAX_REQUEST_BYTES = int(env("INGEST_MAX_REQUEST_BYTES", str(INGEST_MAX_FILE_BYTES)))
# A request's hold on the quota lapses after this long if its process died without releasing it.
INGEST_HOLD_SECONDS = int(env("INGEST_HOLD_SECONDS", "3600"))
# An upload created but sent no byte expires this soon (frees its slot); then UPLOADS_EXPIRE_SECONDS.
UPLOADS_IDLE_CREATION_SECONDS = int(env("UPLOADS_IDLE_CREATION_SECONDS", "900"))
UPLOADS_MAX_OPEN_PER_USER = int(env("UPLOADS_MAX_OPEN_PER_USER", "16"))  # uploads receiving at once
UPLOADS_QUOTA_RETRY_SECONDS = int(env("UPLOADS_QUOTA_RETRY_SECONDS", "60"))  # Retry-After, spool full
UPLOADS_BUNDLE_MAX_MEMBERS = int(env("UPLOADS_BUNDLE_MAX_MEMBERS", "2000"))
# Declared uncompressed total / bundle size: a stored ZIP is below 1; more means shared data.
UPLOADS_BUNDLE_MAX_RATIO = float(env("UPLOADS_BUNDLE_MAX_RATIO", "1.0"))
UPLOADS_MANIFEST_MAX_BYTES = int(env("UPLOADS_MANIFEST_MAX_BYTES", str(4 * 1024**2)))
UPLOADS_MANIFEST_MAX_INSTANCES = int(env("UPLOADS_MANIFEST_MAX_INSTANCES", "10000"))
# django-ratelimit counts in CACHES["default"]; "N/s|m|h|d" per scope; a cache outage lets requests through.
INGEST_RATE_LIMITS = {
    "upload_create": {
        "user": env("RATE_UPLOAD_CREATE_USER", "120/m"),
        "site": env("RATE_UPLOAD_CREATE_SITE", "600/m"),
    },
    "upload_form": {
        "user": env("RATE_UPLOAD_FORM_USER", "20/m"),
        "site": env("RATE_UPLOAD_FORM_SITE", "60/m"),
    },
    "upload_api": {"user": env("RATE_UPLOAD_API_USER", "20/m"), "site": env("RATE_UPLOAD_API_SITE", "60/m")},
    "sms_reply": {"sender": env("RATE_SMS_REPLY_SENDER", "10/m"), "all": env("RATE_SMS_REPLY_ALL", "120/m")},
}
RATELIMIT_FAIL_OPEN = env_bool("RATELIMIT_FAIL_OPEN", True)


# --- auth: lockout, second factor, sessions, password reset, cache (docs/authentication.md) ---
# django-axes first: it refuses a locked (user name, client address) before any password is checked,
# on every path that calls authenticate(request=...): the login page, the admin (which sends to the
# same login), the token endpoint. Keyed on the pair, so failures from an attacker elsewhere never
# lock the on-call radiologist out of their own machine.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(env("AXES_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
# The client address, for the lockout and the audit trail alike: audit.addresses.client_address
# (django-ipware). JOLIBA_PROXY_COUNT (audit block below) says how many proxies X-Forwarded-For
# lists after the client: nginx alone, appending the address it saw, is 0; unset (the default,
# the quickstart) ignores the header, which any client can write. A header that does not hold
# exactly that many falls back to REMOTE_ADDR, so made-up addresses give an attacker no fresh keys.
AXES_CLIENT_IP_CALLABLE = "audit.addresses.client_address"
# Whom a locked-out person calls, shown on the lockout and second-factor pages.
JOLIBA_SUPPORT_CONTACT = env("JOLIBA_SUPPORT_CONTACT", "")

# Second factor (TOTP, with backup codes) for radiologists and admins: until they verify (or
# enrol), nothing patient-related opens (accounts.middleware.SecondFactorMiddleware).
JOLIBA_2FA_REQUIRED = env_bool("JOLIBA_2FA_REQUIRED", True)
OTP_TOTP_ISSUER = "Joliba"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # no admin reads a TOTP key (or a backup code) to clone a phone
TWO_FACTOR_LOGIN_TIMEOUT = 600  # seconds between the password and the code

# Idle expiry: a session not used for JOLIBA_SESSION_IDLE_MINUTES ends (the cookie and the stored
# session both expire; accounts.middleware refreshes them as the person works, background refreshes
# of the worklist do not count), and none lives past JOLIBA_SESSION_MAX_HOURS.
JOLIBA_SESSION_IDLE_MINUTES = float(env("JOLIBA_SESSION_IDLE_MINUTES", "30"))
JOLIBA_SESSION_MAX_HOURS = float(env("JOLIBA_SESSION_MAX_HOURS", "12"))
SESSION_COOKIE_AGE = max(1, int(JOLIBA_SESSION_IDLE_MINUTES * 60))

# Password reset: per client address and per e-mail address, counted in the shared cache.
PASSWORD_RESET_RATE_PER_ADDRESS = env("PASSWORD_RESET_RATE_PER_ADDRESS", "10/h")
PASSWORD_RESET_RATE_PER_EMAIL = env("PASSWORD_RESET_RATE_PER_EMAIL", "3/h")
PASSWORD_RESET_TIMEOUT = int(env("PASSWORD_RESET_TIMEOUT", str(3600)))  # the link's life, seconds
# The console, file and in-memory backends write the reset link where it does not belong (the
# server's log) or nowhere: production sends real mail.
_NO_REAL_MAIL = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}
if PRODUCTION and EMAIL_BACKEND in _NO_REAL_MAIL:
    raise ImproperlyConfigured(f"Production sends real mail: EMAIL_BACKEND={EMAIL_BACKEND} is refused.")
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT", "30"))

# The cache the rate limits count in, shared by every process of the platform: CACHE_URL
# redis://host:6379/2 in production (atomic counts), file:///path, or locmem:// (one process);
# by default files under DATA_DIR, which the quickstart's processes share.
CACHE_URL = env("CACHE_URL", f"file://{DATA_DIR / 'cache'}")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL.startswith("file://"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": CACHE_URL.removeprefix("file://"),
        }
    }
elif CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured("CACHE_URL must be redis://, rediss://, unix://, file:// or locmem://")
# (django-ratelimit is used as a library, not an app: Redis counts atomically; a file cache may
# miss a few concurrent tries, which the quickstart's single host can live with.)
# --- integrity: de-identification, retention, patient export (docs/privacy.md) ---
# Key of the de-identified UIDs and pseudonyms (empty: derived from SECRET_KEY). The same key
# exports the same study with the same UIDs; changing it unlinks every earlier export.
PRIVACY_DEID_KEY = env("PRIVACY_DEID_KEY", "")
PRIVACY_EXPORT_DIR = Path(env("PRIVACY_EXPORT_DIR", str(DATA_DIR / "exports")))
# Retention in days (0: kept forever). The audit trail is never purged by the platform.
RETENTION_INCOMPLETE_UPLOAD_DAYS = int(env("RETENTION_INCOMPLETE_UPLOAD_DAYS", "7"))
RETENTION_SPOOL_DAYS = int(env("RETENTION_SPOOL_DAYS", "2"))
RETENTION_REJECTED_DAYS = int(env("RETENTION_REJECTED_DAYS", "90"))
RETENTION_RENDITIONS_DAYS = int(env("RETENTION_RENDITIONS_DAYS", "0"))
RETENTION_DEID_EXPORT_DAYS = int(env("RETENTION_DEID_EXPORT_DAYS", "7"))
CELERY_BEAT_SCHEDULE["retention-purge"] = {  # one task deletes what the rules above say is due
    "task": "privacy.tasks.purge_retention",
    "schedule": float(env("RETENTION_PURGE_SECONDS", "3600")),
}

# --- audit: the audit trail (docs/audit.md) ---
# Rows the database refused wait here (JSON lines, fsync'd) until the beat task replays them.
AUDIT_SPOOL_DIR = Path(env("AUDIT_SPOOL_DIR", str(DATA_DIR / "audit-spool")))
# Images are fetched per frame: "study.images_viewed" at most once per user and study this often.
AUDIT_IMAGES_VIEWED_MINUTES = float(env("AUDIT_IMAGES_VIEWED_MINUTES", "10"))
AUDIT_PAGE_SIZE = int(env("AUDIT_PAGE_SIZE", "100"))
# Reverse proxies listed in X-Forwarded-For after the client (django-ipware's proxy_count); unset:
# the header is ignored. Axes finds the client's address through audit.addresses too (one rule).
JOLIBA_PROXY_COUNT = int(env("JOLIBA_PROXY_COUNT")) if env("JOLIBA_PROXY_COUNT") else None
CELERY_BEAT_SCHEDULE["audit-replay-spool"] = {  # audit rows the database refused, into the table
    "task": "audit.tasks.replay_audit_spool",
    "schedule": float(env("AUDIT_REPLAY_SECONDS", "60")),
}

# --- tokens: the site agents' machine tokens (docs/tokens.md) ---
TOKENS_DEFAULT_DAYS = int(env("TOKENS_DEFAULT_DAYS", "365"))  # lifetime of a new token
TOKENS_MAX_DAYS = int(env("TOKENS_MAX_DAYS", str(max(3 * 365, TOKENS_DEFAULT_DAYS))))
# Key of the tokens' HMAC (by default SECRET_KEY): changing it invalidates every token.
TOKENS_HASH_KEY = env("TOKENS_HASH_KEY", SECRET_KEY)
# A token's last use (and the audit's "token.used") is written at most this often.
TOKENS_TOUCH_SECONDS = int(env("TOKENS_TOUCH_SECONDS", "60"))

# --- harden: production checks, security headers, CSP, caching of patient data (docs/security.md) ---
if PRODUCTION and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    raise ImproperlyConfigured("Production needs PostgreSQL (DATABASE_URL=postgres://...), not SQLite.")
# HSTS: once a browser has seen it, it refuses plain HTTP to this host (and its subdomains) for
# that long. A year in production; 0 (off) elsewhere, so a developer's localhost is not pinned.
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", str(365 * 24 * 3600) if PRODUCTION else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)  # only matters if the domain is submitted
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)  # behind the proxy: X-Forwarded-Proto
# Kannel calls back, and health checks ask, over plain HTTP on the machine itself: never redirected.
SECURE_REDIRECT_EXEMPT = [r"^alerts/kannel/", r"^health/"]
SECURE_REFERRER_POLICY = "same-origin"  # study URLs never leave in a Referer
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # send.js, autosave.js, worklist.js read the token from the form field
# Images (renditions, previews, heatmaps) may stay in this browser's cache this long: a reading
# session (the case, the next cases the viewer prefetched); logout clears the cache earlier.
# Everything else with patient data is no-store (joliba.security).
PRIVATE_CACHE_SECONDS = int(env("PRIVATE_CACHE_SECONDS", "3600"))
CSP_REPORTS_PER_MINUTE = int(env("CSP_REPORTS_PER_MINUTE", "30"))  # per client address (x10 in all)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],  # no inline script, no eval: templates hold none (tests/test_csp*.py)
        "style-src": ["'self'"],  # no style= attribute, no <style>: CSSOM from scripts is allowed
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "worker-src": ["'none'"],  # the viewer decodes on the page (OffscreenCanvas), no worker
        "object-src": ["'none'"],
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "report-uri": ["/csp-report/"],
    },
}
# --- ops: health endpoints and backups (docs/operations.md, docs/backup.md) ---
# Every readiness check gives up after this long, so /health/ready answers within seconds.
HEALTH_CHECK_TIMEOUT_SECONDS = float(env("HEALTH_CHECK_TIMEOUT_SECONDS", "2"))
# Each worker writes its last-alive time this often (0: never); older than the stale bound, it is dead.
HEALTH_WORKER_HEARTBEAT_SECONDS = float(env("HEALTH_WORKER_HEARTBEAT_SECONDS", "2"))
HEALTH_WORKER_STALE_SECONDS = float(env("HEALTH_WORKER_STALE_SECONDS", "6"))
# Queues that must each have a live worker (comma-separated; by default the default queue).
HEALTH_WORKER_QUEUES = [q for q in env("HEALTH_WORKER_QUEUES", CELERY_TASK_DEFAULT_QUEUE).split(",") if q]
HEALTH_BEAT_SECONDS = float(env("HEALTH_BEAT_SECONDS", "10"))  # beat's tick task
HEALTH_BEAT_STALE_SECONDS = float(env("HEALTH_BEAT_STALE_SECONDS", str(3 * HEALTH_BEAT_SECONDS + 5)))
HEALTH_MIN_FREE_BYTES = int(env("HEALTH_MIN_FREE_BYTES", str(2 * 1024**3)))  # free space of DATA_DIR
# Components whose failure makes /health/ready answer 503 (the others are reported only).
HEALTH_REQUIRED = [
    c for c in env("HEALTH_REQUIRED", "database,broker,orthanc,worker,beat,sms,disk").split(",") if c
]
# Kannel's status page (bearerbox admin port, with its status-password); empty: ask smsbox's sendsms.
HEALTH_KANNEL_STATUS_URL = env("HEALTH_KANNEL_STATUS_URL", "")
# /health/ready's details: to `Authorization: Bearer <HEALTH_TOKEN>`, or to direct requests from
# these networks (loopback and private ranges; "" for none), asked directly (no proxy header).
HEALTH_TOKEN = env("HEALTH_TOKEN", "")
_HEALTH_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
HEALTH_ALLOWED_NETWORKS = [n for n in env("HEALTH_ALLOWED_NETWORKS", _HEALTH_NETWORKS).split(",") if n]
CELERY_BEAT_SCHEDULE["health-beat-tick"] = {  # beat's last tick, read by /health/ready
    "task": "health.tasks.beat_tick",
    "schedule": HEALTH_BEAT_SECONDS,
}
# Backups (manage.py backup / restore): where, and how many daily and weekly ones are kept.
BACKUP_DIR = Path(env("BACKUP_DIR", str(DATA_DIR / "backups")))
BACKUP_KEEP_DAILY = int(env("BACKUP_KEEP_DAILY", "7"))
BACKUP_KEEP_WEEKLY = int(env("BACKUP_KEEP_WEEKLY", "4"))
# --- deploy: broker queues for production (docs/deployment.md) ---
# On RabbitMQ (amqp://) every queue Celery declares is a quorum queue: replicated, and a killed
# worker's unacknowledged task is redelivered at once (Redis waits for its visibility timeout).
# Celery 5.5+ sees the quorum queues and turns global QoS off (RabbitMQ refuses it on them); the
# retries' countdowns use RabbitMQ's native delayed delivery, which needs topic exchanges.
_AMQP_BROKER = CELERY_BROKER_URL.split("://", 1)[0] in {"amqp", "amqps", "pyamqp"}
if _AMQP_BROKER and env_bool("CELERY_QUORUM_QUEUES", True):
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"
    CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = "quorum"  # queues named by -Q or by the routes below
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    CELERY_TASK_CREATE_MISSING_QUEUE_EXCHANGE_TYPE = "topic"
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}  # a publish returns once stored
# CELERY_SPLIT_QUEUES=1: tasks go to the ingest, inference and alerts queues, each consumed by its
# own workers (deploy/compose.yaml, deploy/systemd/joliba-worker@.service); the rest (sweeps,
# audit, reports) to CELERY_TASK_DEFAULT_QUEUE. Off by default: the quickstart's single worker and
# the tests' workers consume one queue, and would never see a routed task.
CELERY_SPLIT_QUEUES = env_bool("CELERY_SPLIT_QUEUES", False)
JOLIBA_TASK_QUEUES = {
    "ingest": [
        "ingest.tasks.follow_orthanc_changes",
        "uploads.tasks.finalise_transfer",
        "uploads.tasks.sweep_transfers",
        "viewer.tasks.make_renditions",
        "privacy.tasks.check_burned_in",
    ],
    "inference": [
        "preread.tasks.prepare_for_reading",
        "preread.tasks.rerun_preread",
        "preread.tasks.run_shadow_models",  # dashboard: shadow mode (docs/dashboard.md)
        "uploads.tasks.preread_preview",  # the provisional pre-read of a preview (docs/worklist.md)
    ],
    "alerts": ["alerts.tasks.deliver_alert", "alerts.tasks.run_due_alerts"],
}
if CELERY_SPLIT_QUEUES:
    CELERY_TASK_ROUTES = {
        task: {"queue": queue} for queue, tasks in JOLIBA_TASK_QUEUES.items() for task in tasks
    }
# --- dashboard: the coordinator's page (docs/dashboard.md) ---
# Each site's prepaid data per calendar month, in MB, by site code ("*": every other site; 0: none).
DASHBOARD_DATA_BUDGET_MB = json.loads(env("DASHBOARD_DATA_BUDGET_MB", "{}"))
# No byte from a site for this long while one of its sendings is under way: an outage window.
DASHBOARD_OUTAGE_MINUTES = float(env("DASHBOARD_OUTAGE_MINUTES", "30"))
# --- ops: metrics and structured logs (docs/operations.md#metrics, #logs) ---
# Prometheus at /metrics: django-prometheus (requests, database, cache) and the platform's own
# figures computed at scrape time (health/metrics.py). Not public: a bearer METRICS_TOKEN, or a
# direct request from METRICS_ALLOWED_NETWORKS (loopback only by default; "" for none).
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = [n for n in env("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128").split(",") if n]
METRICS_INCLUDE_ORTHANC = env_bool("METRICS_INCLUDE_ORTHANC", True)  # Orthanc's own, appended
METRICS_EXTRA_QUEUES = [q for q in env("METRICS_EXTRA_QUEUES", "").split(",") if q]  # depths of these too
INSTALLED_APPS.append("django_prometheus")
MIDDLEWARE.insert(0, "django_prometheus.middleware.PrometheusBeforeMiddleware")
MIDDLEWARE.append("django_prometheus.middleware.PrometheusAfterMiddleware")
_PROMETHEUS_DB = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
DATABASES["default"]["ENGINE"] = _PROMETHEUS_DB.get(
    DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"]
)
_PROMETHEUS_CACHE = {
    f"django.core.cache.backends.{name}": f"django_prometheus.cache.backends.{name}"
    for name in ("locmem.LocMemCache", "filebased.FileBasedCache")
}
CACHES["default"]["BACKEND"] = _PROMETHEUS_CACHE.get(
    CACHES["default"]["BACKEND"], CACHES["default"]["BACKEND"]
)
# Logs: JSON lines in production (LOG_FORMAT=json|text), patient identifiers masked on every
# handler (health/logs.py). Celery keeps these handlers instead of installing its own.
LOG_FORMAT = env("LOG_FORMAT", "json" if PRODUCTION else "text")
from health.logs import logging_config  # noqa: E402 — nothing from Django in it

LOGGING = logging_config(json_lines=LOG_FORMAT == "json", level=env("LOG_LEVEL", "INFO"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Prefix of the split queues' names (ingest → <prefix>ingest …): several deployments, or test
# sessions, on one RabbitMQ vhost keep apart. Empty in production (compose and the units name
# the plain queues).
CELERY_QUEUE_PREFIX = env("CELERY_QUEUE_PREFIX", "")
if CELERY_SPLIT_QUEUES and CELERY_QUEUE_PREFIX:
    CELERY_TASK_ROUTES = {
        task: {"queue": CELERY_QUEUE_PREFIX + queue}
        for queue, tasks in JOLIBA_TASK_QUEUES.items()
        for task in tasks
    }
