"""Gunicorn settings for the web process (Dockerfile, docker-compose.yml).

Each value can be overridden with an environment variable of the same name in capitals
prefixed GUNICORN_, e.g. GUNICORN_WORKERS=8.
"""

import multiprocessing
import os


def _env(name, default):
    return os.environ.get(f"GUNICORN_{name.upper()}", default)


wsgi_app = "wiki.wsgi:application"
bind = _env("bind", "0.0.0.0:8000")
workers = int(_env("workers", multiprocessing.cpu_count() * 2 + 1))
threads = int(_env("threads", 2))
timeout = int(_env("timeout", 60))
graceful_timeout = int(_env("graceful_timeout", 30))
# Recycle workers now and then so a slow leak never takes a replica down.
max_requests = int(_env("max_requests", 2000))
max_requests_jitter = int(_env("max_requests_jitter", 200))
# Trust X-Forwarded-* only from the reverse proxy in front of gunicorn.
forwarded_allow_ips = _env("forwarded_allow_ips", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# Heartbeat files in memory, not on a possibly slow container overlay filesystem.
SHM = "/dev/shm"  # noqa: S108  (gunicorn creates its own private files inside)
worker_tmp_dir = SHM if os.path.isdir(SHM) else None
