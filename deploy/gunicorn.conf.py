"""Gunicorn settings for the web process (Dockerfile, docker-compose.yml).

Synchronous workers, one per core: on two cores that served the most records per second
(bench/README.md); more processes or threads only contend. Set WEB_CONCURRENCY (gunicorn's
own variable) to the cores the web container gets: the host's CPU count says nothing about
a container's share, and every worker holds its own database connection. Put a buffering
proxy (nginx) in front, as synchronous workers do not keep slow clients' connections.
Any other setting can be given in GUNICORN_CMD_ARGS, e.g. "--timeout 120".
"""

import atexit
import os
import shutil
import tempfile

wsgi_app = "wiki.wsgi:application"
bind = "0.0.0.0:8000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 60
graceful_timeout = 30
# The app is imported once, in the master, before the workers are forked: a worker that
# is recycled starts at once, without importing Django and the app again (which took a
# tenth of the time at 2,000 requests per worker, issue 13). Code changes therefore need
# a restart of the server, not a HUP. No database connection may cross the fork (pre_fork).
preload_app = True
# Recycle workers now and then so a slow leak never takes a replica down; the jitter keeps
# the workers from all restarting at once.
max_requests = 10000
max_requests_jitter = 1000
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
# exit. prometheus_client reads it when it is imported, which preload_app does in the
# master before any hook runs: so it is set here, as this file is read.
_SET_UP = "MLWIKI_METRICS_SET_UP"  # the master that set the directory up (not on a HUP)
_OWN = "MLWIKI_OWN_METRICS_DIR"  # the directory made here, removed at exit


def _metrics_dir():
    if os.environ.get(_SET_UP) == str(os.getpid()):
        return  # read again on a reload (HUP): the running workers' files stay
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="mlwiki-metrics-", dir=worker_tmp_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_OWN] = path
        # Also when no server ran (--check-config imports the app, which writes there).
        atexit.register(_remove, path, os.getpid())
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))
    os.environ[_SET_UP] = str(os.getpid())


def _remove(path, creator):
    if os.getpid() == creator:  # not in a worker, which inherited this handler
        shutil.rmtree(path, ignore_errors=True)


_metrics_dir()


def pre_fork(server, worker):
    """A connection opened in the master (by anything the import ran) would be shared by
    every worker forked after it, their queries interleaved on one socket: none crosses."""
    from django.db import connections

    connections.close_all()


def child_exit(server, worker):
    """A worker's live values (gauges) end with it; its counts stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get(_OWN):
        shutil.rmtree(os.environ[_OWN], ignore_errors=True)
