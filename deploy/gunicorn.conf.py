"""Gunicorn settings for the web process (Dockerfile, docker-compose.yml).

Synchronous workers, one per core: on two cores that served the most records per second
(bench/README.md); more processes or threads only contend. Set WEB_CONCURRENCY (gunicorn's
own variable) to the cores the web container gets: the host's CPU count says nothing about
a container's share, and every worker holds its own database connection. Put a buffering
proxy (nginx) in front, as synchronous workers do not keep slow clients' connections.
Any other setting can be given in GUNICORN_CMD_ARGS, e.g. "--timeout 120".
"""

import os
import shutil
import tempfile

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
# With LOG_FORMAT=json the app writes a JSON line per request (wiki.logs): no second line.
accesslog = None if os.environ.get("LOG_FORMAT") == "json" else "-"
errorlog = "-"
# Gunicorn's control socket (gunicornc) would be made under $HOME, which a read-only root
# filesystem refuses; nothing here uses it.
control_socket_disable = True
# Heartbeat files in memory, not on a possibly slow container overlay filesystem.
SHM = "/dev/shm"  # noqa: S108  (gunicorn creates its own private files inside)
worker_tmp_dir = SHM if os.path.isdir(SHM) else None


# Prometheus (wiki.metrics): each worker keeps its metrics in files of one directory and a
# scrape of any worker sums them all. PROMETHEUS_MULTIPROC_DIR names it (one per server:
# its old files are removed at start); by default a fresh directory in memory, removed at
# exit. It is set before any worker imports prometheus_client, which reads it on import
# (so not with --preload, which would import the app in the master first).
_own_metrics_dir = None


def on_starting(server):
    global _own_metrics_dir
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = _own_metrics_dir = tempfile.mkdtemp(prefix="mlwiki-metrics-", dir=worker_tmp_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def child_exit(server, worker):
    """A worker's live values (gauges) end with it; its counts stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_own_metrics_dir, ignore_errors=True)
