"""gunicorn's settings for Studio's web tier: ``gunicorn -c python:studio.gunicorn_conf studio.wsgi``.

Worker processes with threads (``gthread``): a thread waits on the database while the
others go on. The worker count follows gunicorn's advice, 2 x cores + 1, and can be set
with ``WEB_CONCURRENCY``; threads per worker with ``STUDIO_WEB_THREADS``. Every thread
keeps one database connection open (``DATABASE_CONN_MAX_AGE``), so PostgreSQL needs
``max_connections`` above workers x threads (plus the Celery workers' connections).
"""

from __future__ import annotations

import os

bind = os.environ.get("STUDIO_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("STUDIO_WEB_THREADS") or 4)
# A request slower than this is killed with its worker (the longest API calls, an upload of
# many files, stream to the storage well within it); big jobs run in Celery, not here.
timeout = int(os.environ.get("STUDIO_WEB_TIMEOUT") or 120)
graceful_timeout = 30
keepalive = 5
# Workers are replaced now and then, so a slow leak never grows without bound.
max_requests = 5000
max_requests_jitter = 500
accesslog = os.environ.get("STUDIO_WEB_ACCESS_LOG") or None
errorlog = "-"
