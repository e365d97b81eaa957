"""Settings for the platform, read from the environment.

Defaults run everything on the embedded PostgreSQL and Redis (see
``prc_site.lib.embedded``) so that a fresh clone works; importing this module
starts neither (the entry points do). Production sets
``PRC_ENV=production``, which makes the secret key, hosts, database and broker
required: a missing one stops start-up with a message naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

PRC_ENV = env.str("PRC_ENV", default="development")
PRODUCTION = PRC_ENV == "production"


def required(name: str) -> str:
    value = env.str(name, default="")
    if PRODUCTION and not value:
        raise ImproperlyConfigured(f"{name} must be set when PRC_ENV=production")
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when PRC_ENV=production")
SECRET_KEY = required("DJANGO_SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[]) or (
    [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when PRC_ENV=production")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "rest_framework",
    "prc_site",
    "drf_spectacular",
    "participants",
    "rankers",
    "surveys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "prc_site.urls"
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
WSGI_APPLICATION = "prc_site.wsgi.application"
ASGI_APPLICATION = "prc_site.asgi.application"

# Database: DATABASE_URL points at an external server; otherwise the embedded one, which importing the
# settings does not start (``manage.py``, ``prc_site.serve``, the tests and the benchmark start it).
DATABASE_URL = required("DATABASE_URL")
EMBEDDED_POSTGRES = not DATABASE_URL
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    from prc_site.lib.embedded import postgres_settings

    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", **postgres_settings()}}
DATABASES["default"]["NAME"] = env.str("DATABASE_NAME", default=DATABASES["default"].get("NAME") or "postgres")
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
DATABASES["default"].setdefault("TEST", {"NAME": env.str("DATABASE_TEST_NAME", default="test_prc")})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Broker: CELERY_BROKER_URL points at an external Redis; otherwise the embedded one.
CELERY_BROKER_URL = required("CELERY_BROKER_URL")
EMBEDDED_REDIS = not CELERY_BROKER_URL
if not CELERY_BROKER_URL:
    from prc_site.lib.embedded import redis_socket, redis_url

    CELERY_BROKER_URL = redis_url(redis_socket())
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic jobs: all of them are declared in this one dict (no app has a schedule file of its own).
# Run by hand: the rollups with ``manage.py backfill_rollups --start YYYY-MM-DD --end YYYY-MM-DD [--study SLUG]``;
# the fallback drain with ``manage.py drain_slate_fallback``; the partitions with
# ``celery -A prc_site call rankers.tasks.ensure_slate_partitions``.
# Queue refreshes (rankers/content/queues.py): how many newest posts a pool keeps, and how often pools and
# queues are rebuilt per platform ("Crawling and computation occur ... at regular intervals of three hours").
PRC_CONTENT_POOL_SIZE = env.int("PRC_CONTENT_POOL_SIZE", default=2000)
PRC_QUEUE_REFRESH_S = env.int("PRC_QUEUE_REFRESH_S", default=3 * 3600)
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Yesterday's and today's per-arm rollups; late slates land in yesterday's.
    "rankers.rollup_recent_days": {"task": "rankers.tasks.rollup_recent_days", "schedule": 15 * 60},
    # Slates that PostgreSQL refused at serving time: from the Redis fallback list into the log.
    "rankers.drain_slate_fallback": {"task": "rankers.tasks.drain_slate_fallback", "schedule": 60},
    # The slate log's monthly partitions, three months ahead.
    "rankers.ensure_slate_partitions": {"task": "rankers.tasks.ensure_slate_partitions", "schedule": 24 * 3600},
    # Effect estimates (S1, S3) of every live or closed study, nightly (manage.py compute_effects).
    "surveys.compute_effects": {"task": "surveys.tasks.compute_effects", "schedule": crontab(hour=3, minute=0)},
    # Survey invitations, expiries and reminders (manage.py run_survey_schedule).
    "surveys.run_survey_schedule": {"task": "surveys.tasks.run_survey_schedule", "schedule": 15 * 60},
    # Monthly update emails, at most one per participant and calendar month (manage.py send_monthly_updates).
    "surveys.send_monthly_updates": {"task": "surveys.tasks.send_monthly_updates", "schedule": 24 * 3600},
    # Texts of slates served before their scores arrived (manage.py rescore_slates); on the scoring queue.
    "rankers.rescore_missed_slates": {"task": "rankers.tasks.rescore_missed_slates", "schedule": 5 * 60},
    # Daily active minutes and event counts of behaviour events (manage.py rollup_behaviour).
    "participants.rollup_behaviour_recent_days": {
        "task": "participants.tasks.rollup_behaviour_recent_days",
        "schedule": 15 * 60,
    },
    # The behaviour event log's monthly partitions, three months ahead.
    "participants.ensure_event_partitions": {
        "task": "participants.tasks.ensure_event_partitions",
        "schedule": 24 * 3600,
    },
    # Expired sessions out of the database (by hand: ``manage.py clearsessions``).
    "participants.clear_expired_sessions": {"task": "participants.tasks.clear_expired_sessions", "schedule": 3600},
    # Candidate posts for the inserting arms, one run per active source (by hand: ``manage.py fetch_content``).
    "rankers.content.fetch_rss": {"task": "rankers.content.tasks.fetch_sources", "schedule": 30 * 60, "args": ("rss",)},
    "rankers.content.fetch_reddit": {
        "task": "rankers.content.tasks.fetch_sources",
        "schedule": 30 * 60,
        "args": ("reddit",),
    },
    "rankers.content.fetch_datasets": {
        "task": "rankers.content.tasks.fetch_sources",
        "schedule": 6 * 3600,
        "args": ("dataset",),
    },
    # Pools and per-participant queues of the inserting arms, per platform ("several times a day").
    **{
        f"rankers.content.refresh_queues.{platform}": {
            "task": "rankers.content.tasks.refresh_queues",
            "schedule": PRC_QUEUE_REFRESH_S,
            "args": (platform,),
        }
        for platform in ("facebook", "reddit", "twitter")
    },
    # Annotation of new candidate posts: LLM and classifier batches (by hand: ``manage.py annotate_posts``).
    "rankers.content.annotate_new_posts": {"task": "rankers.content.tasks.annotate_new_posts", "schedule": 10 * 60},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Researcher sign-in. django-axes counts failed sign-ins per username and client address and refuses that
# pair for a while after too many (HTTP 429); the backend must come first to refuse before checking passwords.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Behind the proxy the client address is the first of X-Forwarded-For (set AXES_IPWARE_PROXY_COUNT to the hops).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if AXES_IPWARE_PROXY_COUNT else ("REMOTE_ADDR",)
)
# A second factor (django-otp: TOTP apps, or static one-time tokens from ``manage.py addstatictoken``) for
# the admin and the research pages. On by default in production; devices are managed in the admin either way.
PRC_REQUIRE_2FA = env.bool("PRC_REQUIRE_2FA", default=PRODUCTION)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="PRC research platform")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "admin:login"
# Sessions hold a signup's participant pk or a researcher's login, nothing secret; they end after this long.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE_S", default=12 * 3600)

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "EXCEPTION_HANDLER": "prc_site.lib.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Prosocial ranking platform API",
    "DESCRIPTION": "Endpoints for the browser extension and ranker services.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "rankers.schema.add_ranking_paths"],
}

# Email (survey invitations, reminders, monthly updates). Development prints messages to the console;
# set EMAIL_URL (e.g. smtp+tls://user:pass@host:587) in production, or EMAIL_BACKEND for a file backend.
_EMAIL = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=_EMAIL["EMAIL_BACKEND"])
EMAIL_HOST = _EMAIL.get("EMAIL_HOST", "")
EMAIL_PORT = _EMAIL.get("EMAIL_PORT", 25)
EMAIL_HOST_USER = _EMAIL.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _EMAIL.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _EMAIL.get("EMAIL_USE_TLS", False)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(BASE_DIR / ".data" / "emails"))

# Research exports (zip files of CSV or Parquet, a codebook and the pre-registration) are written here.
PRC_EXPORT_DIR = env.str("PRC_EXPORT_DIR", default=str(BASE_DIR / ".data" / "exports"))
PRC_EXPORT_QUEUE = env.str("PRC_EXPORT_QUEUE", default="")  # Celery queue of export builds; empty: the default queue
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Social media study <study@localhost>")
# Absolute address of the participant pages, for links in emails.
PRC_SITE_URL = env.str("PRC_SITE_URL", default="http://localhost:8000")

# Key of the keyed hashes of participant IPs and vendor ids (prc_site/lib/hashing.py). Separate from the
# secret key, so rotating that never orphans the hashes; fixed for the deployment's life.
PRC_HASH_SALT = required("PRC_HASH_SALT") or SECRET_KEY
if PRODUCTION and PRC_HASH_SALT == SECRET_KEY:
    raise ImproperlyConfigured("PRC_HASH_SALT must differ from DJANGO_SECRET_KEY when PRC_ENV=production")

# Participant pages and the extension API.
# Where the install page sends participants to get the extension (its Chrome Web Store page).
PRC_EXTENSION_URL = env.str("PRC_EXTENSION_URL", default="https://chromewebstore.google.com/")
PRC_HEARTBEAT_INTERVAL_S = env.int("PRC_HEARTBEAT_INTERVAL_S", default=3600)  # how often the extension pings

# The content pipeline's connectors (rankers/content): each fetch's whole deadline, the largest body read,
# the User-Agent sent (Reddit refuses generic ones), and when a source's newest post counts as stale.
PRC_CONTENT_FETCH_TIMEOUT_S = env.float("PRC_CONTENT_FETCH_TIMEOUT_S", default=20.0)
PRC_CONTENT_MAX_BYTES = env.int("PRC_CONTENT_MAX_BYTES", default=50 * 1024 * 1024)
PRC_CONTENT_USER_AGENT = env.str("PRC_CONTENT_USER_AGENT", default="prc-research-platform/0.1 (content pipeline)")
PRC_CONTENT_STALE_AFTER_H = env.float("PRC_CONTENT_STALE_AFTER_H", default=24.0)
# Annotation of candidate posts (rankers/content; docs/content-pipeline.md). The LLM annotator speaks to any
# OpenAI-compatible server; unset, it uses OPENAI_BASE_URL and PRC_LLM_MODEL, at PRC_LLM_PRICE_*_PER_1K.
PRC_EMBEDDING_MODEL_DIR = env.str("PRC_EMBEDDING_MODEL_DIR", default="")  # sentence encoder; default: installed MiniLM
# The inserting arms on /rank: how long a web process keeps its copy of a candidate pool, and how long a request
# may take to read its participant's queue and shown posts before it falls back to the original order.
PRC_CONTENT_POOL_CACHE_S = env.float("PRC_CONTENT_POOL_CACHE_S", default=60.0)
PRC_CONTENT_LOAD_TIMEOUT_S = env.float("PRC_CONTENT_LOAD_TIMEOUT_S", default=0.1)
PRC_ANNOTATION_LLM_BASE_URL = env.str("PRC_ANNOTATION_LLM_BASE_URL", default="")
PRC_ANNOTATION_LLM_MODEL = env.str("PRC_ANNOTATION_LLM_MODEL", default="")
PRC_ANNOTATION_PROMPT_VERSION = env.str("PRC_ANNOTATION_PROMPT_VERSION", default="prc-s3.3-s3.2-v2")
PRC_ANNOTATION_DAILY_BUDGET = env.float("PRC_ANNOTATION_DAILY_BUDGET", default=25.0)  # 0: no annotation at all
PRC_ANNOTATION_LLM_TIMEOUT_S = env.float("PRC_ANNOTATION_LLM_TIMEOUT_S", default=60.0)  # per request
PRC_ANNOTATION_LLM_ATTEMPTS = env.int("PRC_ANNOTATION_LLM_ATTEMPTS", default=3)  # then the post is recorded as failed
PRC_ANNOTATION_LLM_CONCURRENCY = env.int("PRC_ANNOTATION_LLM_CONCURRENCY", default=16)  # requests in flight per task
PRC_ANNOTATION_BATCH_SIZE = env.int("PRC_ANNOTATION_BATCH_SIZE", default=64)  # posts per annotation task
PRC_ANNOTATION_RATE_LIMIT = env.str("PRC_ANNOTATION_RATE_LIMIT", default="30/m")  # LLM batch tasks per worker process
PRC_ANNOTATION_CLAIM_TIMEOUT_S = env.int("PRC_ANNOTATION_CLAIM_TIMEOUT_S", default=900)  # also a batch's time limit
PRC_ANNOTATION_MAX_AGE_H = env.float("PRC_ANNOTATION_MAX_AGE_H", default=72.0)  # older posts are not sent to the LLM
PRC_CIVIC_MODEL_DIR = env.str("PRC_CIVIC_MODEL_DIR", default="")  # transformers dir, or a train_scorer dir
PRC_CIVIC_LABEL = env.str("PRC_CIVIC_LABEL", default="civic")  # the civic model's positive label

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}

SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
if PRODUCTION:
    # HTTPS only: the proxy terminates TLS and says so in X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^(healthz|livez|readyz|health/)"]  # the load balancer's plain-HTTP probes
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)

# Attribute scoring
# Scores for the bridging rankers (rankers/scoring). See docs/rankers.md for the backends.
PRC_SCORER_BACKEND = env.str(
    "PRC_SCORER_BACKEND", default="baseline"
)  # baseline | transformers | embedding | llm | http
PRC_SCORER_MODEL_DIR = env.str("PRC_SCORER_MODEL_DIR", default="")  # transformers: a local model directory
PRC_SCORER_BATCH_SIZE = env.int("PRC_SCORER_BATCH_SIZE", default=32)
PRC_SCORER_MAX_LENGTH = env.int("PRC_SCORER_MAX_LENGTH", default=256)  # tokens; longer texts are truncated
PRC_SCORER_QUANTIZE = env.bool("PRC_SCORER_QUANTIZE", default=False)  # transformers: dynamic int8 linear layers
PRC_SCORER_RUNTIME = env.str("PRC_SCORER_RUNTIME", default="torch")  # transformers: torch or onnxruntime (exported)
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="")  # llm: any OpenAI-compatible server
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
PRC_LLM_MODEL = env.str("PRC_LLM_MODEL", default="gpt-4o-mini")
PRC_LLM_PRICE_PROMPT_PER_1K = env.float("PRC_LLM_PRICE_PROMPT_PER_1K", default=0.0)  # cost accounting, per 1k tokens
PRC_LLM_PRICE_COMPLETION_PER_1K = env.float("PRC_LLM_PRICE_COMPLETION_PER_1K", default=0.0)
PRC_SCORER_HTTP_URL = env.str("PRC_SCORER_HTTP_URL", default="")  # http: a Perspective-compatible analyze URL
PRC_SCORER_HTTP_PERSPECTIVE_NAMES = env.bool("PRC_SCORER_HTTP_PERSPECTIVE_NAMES", default=True)  # *_EXPERIMENTAL
PRC_SCORER_TIMEOUT_S = env.float("PRC_SCORER_TIMEOUT_S", default=0.3)  # per request, llm and http
PRC_SCORER_CONCURRENCY = env.int("PRC_SCORER_CONCURRENCY", default=50)  # parallel requests, llm and http
PRC_SCORER_DEADLINE_S = env.float("PRC_SCORER_DEADLINE_S", default=0.35)  # whole slate; < the ranker budget
PRC_SCORER_CACHE_SIZE = env.int("PRC_SCORER_CACHE_SIZE", default=100_000)  # per-process LRU entries (web)
PRC_SCORER_CACHE_TTL_S = env.int("PRC_SCORER_CACHE_TTL_S", default=7 * 24 * 3600)  # scores kept in Redis
# The scorer workers (rankers/scoring/worker.py): Celery workers on their own queue; see docs/rankers.md.
PRC_SCORER_QUEUE = env.str("PRC_SCORER_QUEUE", default="scoring")
PRC_SCORER_NICE = env.int("PRC_SCORER_NICE", default=19)  # scorer processes yield the CPU to web processes
PRC_SCORER_WORKERS = env.int("PRC_SCORER_WORKERS", default=2)  # processes of the scorer worker run_platform starts
PRC_SCORER_THREADS = env.int("PRC_SCORER_THREADS", default=1)  # torch threads per scorer process
PRC_SCORER_REDIS_URL = env.str("PRC_SCORER_REDIS_URL", default="")  # scores and jobs; default: the broker's Redis
PRC_SCORER_KEY_PREFIX = env.str("PRC_SCORER_KEY_PREFIX", default="prc:scoring")
PRC_SCORER_REDIS_TIMEOUT_S = env.float("PRC_SCORER_REDIS_TIMEOUT_S", default=0.2)  # each Redis call
PRC_SCORER_MAX_QUEUED_JOBS = env.int("PRC_SCORER_MAX_QUEUED_JOBS", default=64)  # admission control: live jobs
PRC_SCORER_BATCH_TEXTS = env.int("PRC_SCORER_BATCH_TEXTS", default=256)  # texts a worker takes at once
PRC_SCORER_JOB_TEXTS = env.int("PRC_SCORER_JOB_TEXTS", default=25)  # a slate's texts per job (0: one job)
PRC_SCORER_POLL_MS = env.int("PRC_SCORER_POLL_MS", default=10)  # how often /rank looks for its job's scores
PRC_SCORER_TASK_TIME_LIMIT_S = env.int("PRC_SCORER_TASK_TIME_LIMIT_S", default=30)  # a hung batch's process is replaced
PRC_RESCORE_WINDOW_S = env.int("PRC_RESCORE_WINDOW_S", default=3600)  # how far back rescoring looks at most
PRC_RESCORE_MAX_TEXTS = env.int("PRC_RESCORE_MAX_TEXTS", default=5000)  # texts per rescoring run
# Scoring runs only on the scorer workers (``celery worker -Q scoring``); other workers never load a model.
CELERY_TASK_ROUTES = {
    "rankers.tasks.score_pending": {"queue": PRC_SCORER_QUEUE},
    "rankers.tasks.rescore_missed_slates": {"queue": PRC_SCORER_QUEUE},
    # Annotation of candidate posts runs on the same workers (models and LLM client loaded once per process).
    "rankers.content.tasks.annotate_llm_batch": {"queue": PRC_SCORER_QUEUE},
    "rankers.content.tasks.classify_posts": {"queue": PRC_SCORER_QUEUE},
}
PRC_EXTERNAL_RANKER_TIMEOUT_S = env.float("PRC_EXTERNAL_RANKER_TIMEOUT_S", default=0.4)  # default hard timeout

# Ranking path (/rank); see docs/ranking-path.md.
RANK_MAX_BODY_BYTES = env.int("RANK_MAX_BODY_BYTES", default=2 * 1024 * 1024)  # larger bodies get 413
RANK_RATE_PER_SECOND = env.float("RANK_RATE_PER_SECOND", default=10.0)  # per extension token
RANK_RATE_BURST = env.float("RANK_RATE_BURST", default=30.0)
# Requests with a token nobody holds, per client address: cheap to refuse, and they never get a token's bucket.
RANK_UNKNOWN_TOKEN_RATE_PER_SECOND = env.float("RANK_UNKNOWN_TOKEN_RATE_PER_SECOND", default=1.0)
RANK_UNKNOWN_TOKEN_BURST = env.float("RANK_UNKNOWN_TOKEN_BURST", default=10.0)
# Behind a proxy: the header it sets to the client's address (e.g. X-Real-IP); unset, the socket's peer.
PRC_CLIENT_IP_HEADER = env.str("PRC_CLIENT_IP_HEADER", default="")
# Vendor entry links (/join) per client address: a burst, then this many a second.
JOIN_RATE_PER_SECOND = env.float("JOIN_RATE_PER_SECOND", default=0.5)
JOIN_BURST = env.float("JOIN_BURST", default=20.0)
RANK_DEFAULT_HOLD_MS = env.int("RANK_DEFAULT_HOLD_MS", default=500)  # when the participant is unknown (DB down)
RANK_RANKER_BUDGET_MS = env.int("RANK_RANKER_BUDGET_MS", default=400)  # an arm's ranker_config.budget_ms overrides
RANK_LOOKUP_MS = env.int("RANK_LOOKUP_MS", default=50)  # parsing + token lookup; budget + this < every hold
RANK_SCORING_MARGIN_MS = env.int("RANK_SCORING_MARGIN_MS", default=30)  # of the budget, kept for ranking after scores
RANK_RANKER_THREADS = env.int("RANK_RANKER_THREADS", default=8)  # sync rankers run here (never scoring)
# A web process whose event loop runs this far behind (smoothed, ms) sheds treatment work: its slates are
# answered in their original order (fallback "overloaded") until it catches up, so that the holds keep their time.
RANK_SHED_LAG_MS = env.float("RANK_SHED_LAG_MS", default=25.0)  # 0: never shed
RANK_WRITE_GRACE_S = env.float(
    "RANK_WRITE_GRACE_S", default=0.05
)  # past the hold, an answer waits this long for its write
RANK_WRITE_TIMEOUT_S = env.float("RANK_WRITE_TIMEOUT_S", default=5.0)  # a slate not stored this long goes to Redis
RANK_FALLBACK_TIMEOUT_S = env.float("RANK_FALLBACK_TIMEOUT_S", default=2.0)  # connect/read/pool-wait limit, Redis push
RANK_DB_LOOKUP_TIMEOUT_S = env.float("RANK_DB_LOOKUP_TIMEOUT_S", default=0.3)  # lookup: pool wait, connect, query
RANK_DB_CONNECT_TIMEOUT_S = env.float("RANK_DB_CONNECT_TIMEOUT_S", default=2.0)  # libpq connect_timeout (2 s at least)
RANK_DB_STATEMENT_TIMEOUT_MS = env.int("RANK_DB_STATEMENT_TIMEOUT_MS", default=2000)  # server-side, hot-path statements
RANK_SERVICE_MAX_INSERTED = env.int("RANK_SERVICE_MAX_INSERTED", default=10)  # /rankers/<name>/rank caps
RANK_SERVICE_MAX_DELETED = env.int("RANK_SERVICE_MAX_DELETED", default=10)
RANK_CONTENT_CACHE_SIZE = env.int("RANK_CONTENT_CACHE_SIZE", default=200_000)  # content versions known stored
RANK_FALLBACK_KEY = env.str("RANK_FALLBACK_KEY", default="rankers:slate_fallback")
RANK_FALLBACK_REDIS_URL = env.str("RANK_FALLBACK_REDIS_URL", default="")  # default: the broker's Redis
RANK_DB_POOL_SIZE = env.int("RANK_DB_POOL_SIZE", default=4)  # async connections per web process
# Where web processes write slates (a libpq URL, e.g. through a pooler); default: the database above.
RANK_WRITER_DATABASE_URL = env.str("RANK_WRITER_DATABASE_URL", default="")
# Behaviour-event batches on the ASGI path (participants.events_asgi), per web process: past the first limit a
# batch is answered 503 + Retry-After at once; each batch's lookup and insert (pool wait included) within the timeout.
EVENTS_MAX_IN_FLIGHT = env.int("EVENTS_MAX_IN_FLIGHT", default=32)
EVENTS_DB_POOL_SIZE = env.int("EVENTS_DB_POOL_SIZE", default=2)
EVENTS_DB_TIMEOUT_S = env.float("EVENTS_DB_TIMEOUT_S", default=5.0)
EVENTS_RETRY_AFTER_S = env.int("EVENTS_RETRY_AFTER_S", default=5)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")  # Prometheus's bearer token for /metrics; unset: researchers only

# Static files under ASGI are FileResponses with a synchronous iterator; Django warns on every one.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
