"""Gunicorn settings for the web process (Dockerfile, docker-compose.yml).

Synchronous workers, one per core: on two cores that served the most records per second
(bench/README.md); more processes or threads only contend. Set WEB_CONCURRENCY (gunicorn's
own variable) to the cores the web container gets: the host's CPU count says nothing about
a container's share, and every worker holds its own database connection. Put a buffering
proxy (nginx) in front, as synchronous workers do not keep slow clients' connections.
Any other setting can be given in GUNICORN_CMD_ARGS, e.g. "--timeout 120".
"""

import os

wsgi_app = "wiki.wsgi:application"
bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 60
graceful_timeout = 30
# Recycle workers now and then so a slow leak never takes a replica down.
max_requests = 2000
max_requests_jitter = 200
# Trust X-Forwarded-* only from the reverse proxy in front of gunicorn.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# Heartbeat files in memory, not on a possibly slow container overlay filesystem.
SHM = "/dev/shm"  # noqa: S108  (gunicorn creates its own private files inside)
worker_tmp_dir = SHM if os.path.isdir(SHM) else None
