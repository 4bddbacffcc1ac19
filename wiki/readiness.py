"""Readiness: whether this process can serve, asked by Kubernetes at /readyz/.

Each dependency (the database, the broker when one is configured, the default storage) is
asked in a thread of its own, and the answer waited for READYZ_TIMEOUT seconds at most: a
hung server (one that accepts connections and never answers) makes the probe fail on time
instead of holding the request. A check still running from an earlier probe is waited on
again rather than started twice, so a hung dependency costs one thread, not one per probe.
The answer names the dependencies and whether each answered, never an address or a secret.
"""

import logging
import threading
from concurrent.futures import Future, wait

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from wiki import storage

logger = logging.getLogger(__name__)


def check_database(timeout):
    """The database answers a query (on this thread's own connection, closed after)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def check_broker(timeout):
    """The Redis broker answers PING."""
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def check_storage(timeout):
    """The default storage answers (for a bucket, one HEAD request to it; on the local
    disk, MEDIA_ROOT is a writable directory)."""
    if not storage.check(timeout):
        raise storage.Unavailable("The file storage does not answer.")


def checks():
    """The checks that apply to this configuration, by the name the answer shows."""
    found = {"database": check_database}
    if settings.CELERY_BROKER_URL:
        found["broker"] = check_broker
    found["storage"] = check_storage
    return found


_running = {}  # name -> Future of the check in flight
_lock = threading.Lock()


def _start(name, check, timeout):
    with _lock:
        future = _running.get(name)
        if future is not None and not future.done():
            return future
        future = _running[name] = Future()

    def run():
        try:
            check(timeout)
        except BaseException as error:  # any failure is an answer: not ready
            future.set_exception(error)
        else:
            future.set_result(None)

    threading.Thread(target=run, name=f"readyz-{name}", daemon=True).start()
    return future


def readiness(timeout=None):
    """(ready, {name: "ok" | "unavailable" | "timeout"}) for every check, run concurrently."""
    timeout = settings.READYZ_TIMEOUT if timeout is None else timeout
    futures = {name: _start(name, check, timeout) for name, check in checks().items()}
    # One deadline for all: the checks run side by side, so a probe waits ``timeout`` at most.
    wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = "timeout"
            logger.warning("Not ready: %s did not answer within %s s", name, timeout)
        elif future.exception() is not None:
            # Logged for the operator; the answer names only the dependency (an error may
            # carry an address).
            error = future.exception()
            results[name] = "unavailable"
            logger.warning("Not ready: %s: %s: %s", name, type(error).__name__, error)
        else:
            results[name] = "ok"
    return all(result == "ok" for result in results.values()), results


class ReadinessMiddleware:
    """Answers /readyz/ (GET or HEAD): 200 when every dependency answered in time, else 503
    naming the ones that did not. Placed right after HealthCheckMiddleware, before host
    validation and the HTTPS redirect, for the same reason: the kubelet probes the pod's own
    address over plain HTTP."""

    path = "/readyz/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != self.path or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        ready, results = readiness()
        body = {"status": "ok" if ready else "unavailable", "checks": results}
        if not ready:
            body["failed"] = [name for name, result in results.items() if result != "ok"]
        response = JsonResponse(body, status=200 if ready else 503)
        response["Cache-Control"] = "no-store"
        return response
