"""Studio settings: one module, every knob an environment variable with a safe default.

Nothing here touches the filesystem or the network: folders named below are created by
the code that first needs them (the SQLite backend makes its file's folder on connect,
the storage its media folders, the worker and the job sender the broker's), never at import.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(os.environ.get("STUDIO_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for development)."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "studio",
    "annotation",
    "evaluation",
    "deploy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside WhiteNoise, so it sees static responses (and only those: see the class).
    "studio.middleware.StaticGZipMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so it sees the lockout flag the authentication backend set on the way in.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out (username, address) before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "studio.urls"
WSGI_APPLICATION = "studio.wsgi.application"

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
                "studio.context_processors.vendor",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'studio.sqlite3'}"),
        # Persistent connections: opening a PostgreSQL connection per request took 15 % of
        # an annotator's loop. Each is checked before a request reuses it, so one the
        # database dropped is replaced instead of failing the request. (runserver still
        # closes its connections after every request.)
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, plus creating the file's folder on first connect and writers taking
    # turns within a process (studio/db/).
    DATABASES["default"]["ENGINE"] = "studio.db.sqlite3"
    # A worker process and the web server share the file: wait for locks instead of failing,
    # and let the test database live in a file so a real worker process can open it.
    # In WAL mode synchronous=NORMAL flushes at checkpoints, not at every commit (which every
    # waiting writer paid for); a power cut may lose the last commits, never the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # One file per test run, so two runs (say, tests and benchmarks) never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get(
            "STUDIO_TEST_SQLITE", str(VAR_DIR / f"test-studio-{os.getpid()}.sqlite3")
        )
    }

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


def _plotly_js_dir() -> tuple[str, list[tuple[str, str]]]:
    """plotly.js ships inside the plotly package: serve it from there, no CDN, no copy.

    Its URL carries the package's version, so browsers may cache the 4.8 MB file for good
    (``_static_headers``): a new plotly release is a new URL.
    """
    import importlib.metadata
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return "", []
    prefix = f"vendor/plotly-{importlib.metadata.version('plotly')}"
    folder = str(Path(spec.submodule_search_locations[0]) / "package_data")
    return f"{prefix}/plotly.min.js", [(prefix, folder)]


PLOTLY_JS, _plotly_dirs = _plotly_js_dir()
STATICFILES_DIRS = [BASE_DIR / "static", *_plotly_dirs]


def _static_headers(headers, path: str, url: str) -> None:
    """Let browsers keep files whose URL names their version (WhiteNoise calls this)."""
    if url.startswith(f"/{STATIC_URL}vendor/plotly-"):
        headers["Cache-Control"] = "public, max-age=31536000, immutable"


WHITENOISE_ADD_HEADERS_FUNCTION = _static_headers
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Media is never served directly: every file goes through an authorised view.
MEDIA_URL = "/nonexistent-media/"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}

# A Studio page (or the API's JSON error) when a form's CSRF token does not match.
CSRF_FAILURE_VIEW = "studio.errorpages.csrf_failure"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio:project_list"
LOGOUT_REDIRECT_URL = "login"

# Uploads: Django streams anything above 2.5 MB to a temporary file; caps on the request.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("STUDIO_MAX_FILES_PER_REQUEST", 1000)
FILE_UPLOAD_PERMISSIONS = 0o640

SECURE_CONTENT_TYPE_NOSNIFF = True

# Content-Security-Policy on every response (django-csp). Scripts and styles come from
# Studio's own static files only: no inline <script>, no event-handler or style
# attributes, no eval. The one hash is the empty <style> element plotly.js creates and
# then fills through the CSSOM (insertRule), which CSP does not govern.
PLOTLY_EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, PLOTLY_EMPTY_STYLE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)

# HTTPS in production (all on unless DEBUG). Behind a proxy that ends TLS, set
# SECURE_PROXY_SSL_HEADER (e.g. "HTTP_X_FORWARDED_PROTO,https") or every request looks
# like plain HTTP and is redirected. Django sends HSTS on HTTPS responses only.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = env_list("SECURE_REDIRECT_EXEMPT")  # regexes, e.g. a health check
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
# Both reach beyond Studio (every subdomain; browsers' built-in lists): opt in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
_proxy_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_header and len(_proxy_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER is 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_header) if _proxy_header else None
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Sign-in throttling (django-axes): the token endpoint, the sign-in form and the admin.
# After STUDIO_LOGIN_FAILURE_LIMIT failures for one username from one address, that pair
# is refused (429) for STUDIO_LOGIN_COOLOFF_MINUTES; a success resets the count.
AXES_ENABLED = env_bool("STUDIO_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("STUDIO_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("STUDIO_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "studio.security.client_ip"
AXES_LOCKOUT_CALLABLE = "studio.security.lockout_response"
AXES_VERBOSE = False

REST_FRAMEWORK = {
    # Token first: an anonymous call answers 401 with "WWW-Authenticate: Token" (the
    # first class names the challenge); session auth (the browser) is still tried.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "studio.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "studio.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "studio.errors.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Studio API",
    "DESCRIPTION": "Projects, objectives, datasets, images, uploads and jobs. "
    "Every object is reached through the projects the caller is a member of.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the installed sidecar package, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # <id:...> path segments (studio/converters.py) are database ids.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
    },
    "ENUM_NAME_OVERRIDES": {
        "BackboneEnum": "studio.ml.backbones.BACKBONE_CHOICES",
        "JobKindEnum": "studio.models.jobs.Job.Kind",
        "JobStatusEnum": "studio.models.jobs.Job.Status",
        "ObjectiveStatusEnum": "studio.models.projects.Objective.Status",
        "ApproachStatusEnum": "studio.models.projects.Approach.Status",
        "LabelKindEnum": "annotation.models.LabelClass.Kind",
        "AnnotationStatusEnum": "annotation.models.Annotation.Status",
        "AnnotatorStatusEnum": ["draft", "submitted"],
    },
}

# Celery (read by studio/celery.py through the CELERY_ namespace). Redis when
# CELERY_BROKER_URL is set, otherwise kombu's filesystem transport under VAR_DIR.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_FOLDER = Path(os.environ.get("STUDIO_BROKER_DIR", VAR_DIR / "broker"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        # Broadcast and control messages (kombu ≥ 5.3); its default is ./control in the cwd.
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }
else:
    # An unacknowledged task is redelivered after this long; jobs also have a sweeper.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 60 * 60)
    }

STUDIO = {
    "WEIGHTS_DIR": Path(os.environ.get("STUDIO_WEIGHTS_DIR", VAR_DIR / "weights")),
    # Upload validation.
    "MAX_FILE_BYTES": env_int("STUDIO_MAX_FILE_BYTES", 50 * 1024 * 1024),
    "MAX_IMAGE_PIXELS": env_int("STUDIO_MAX_IMAGE_PIXELS", 50_000_000),
    "MAX_ARCHIVE_ENTRIES": env_int("STUDIO_MAX_ARCHIVE_ENTRIES", 20_000),
    "MAX_ARCHIVE_BYTES": env_int("STUDIO_MAX_ARCHIVE_BYTES", 4 * 1024**3),
    "MAX_COMPRESSION_RATIO": env_int("STUDIO_MAX_COMPRESSION_RATIO", 200),
    # One annotation file inside an import archive (streamed, never read whole).
    "MAX_LABEL_FILE_BYTES": env_int("STUDIO_MAX_LABEL_FILE_BYTES", 1024**3),
    "THUMBNAIL_SIZE": env_int("STUDIO_THUMBNAIL_SIZE", 256),
    "MAX_CHECKPOINT_BYTES": env_int("STUDIO_MAX_CHECKPOINT_BYTES", 2 * 1024**3),
    # Segment Anything: the official checkpoint of SAM_MODEL in WEIGHTS_DIR, or a file of
    # that architecture named by SAM_CHECKPOINT (e.g. fine-tuned weights).
    "SAM_MODEL": os.environ.get("STUDIO_SAM_MODEL", "vit_b"),
    "SAM_CHECKPOINT": os.environ.get("STUDIO_SAM_CHECKPOINT", ""),
    # Decoding threads per ingest job (Pillow releases the GIL while decoding).
    "INGEST_THREADS": env_int("STUDIO_INGEST_THREADS", min(4, os.cpu_count() or 1)),
    # Jobs.
    "JOB_MAX_ATTEMPTS": env_int("STUDIO_JOB_MAX_ATTEMPTS", 3),
    "JOB_STALE_AFTER_S": env_int("STUDIO_JOB_STALE_AFTER_S", 300),
    "JOB_SWEEP_INTERVAL_S": env_int("STUDIO_JOB_SWEEP_INTERVAL_S", 60),
    # Export archives are deleted this many days after their job finished (0: kept for ever).
    "EXPORT_KEEP_DAYS": env_int("STUDIO_EXPORT_KEEP_DAYS", 7),
    "EXPORT_SWEEP_INTERVAL_S": env_int("STUDIO_EXPORT_SWEEP_INTERVAL_S", 60 * 60),
    "JOB_HEARTBEAT_S": env_int("STUDIO_JOB_HEARTBEAT_S", 2),
    # Reverse proxies in front of Studio whose X-Forwarded-For is trusted (sign-in throttling).
    "TRUSTED_PROXIES": env_int("STUDIO_TRUSTED_PROXIES", 0),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
