"""A circuit breaker for Redis, which mlwiki can always do without for a while.

Redis counts API requests (the throttle), caches rendered Markdown and carries Celery's
messages. None of these may stall a request: each client has timeouts of tens or hundreds
of milliseconds, and once a call fails the server's breaker stays open for
REDIS_BREAKER_SECONDS, during which every use of that server skips it at once (the
throttle lets the request through, the cache misses, the outbox leaves the work to its
sweep). One breaker per server (host and port): when the throttle's quick call finds it
hung, the cache and the broker do not wait for it too. One warning is logged when an
outage starts and one line when the server answers again, not a traceback per request.
"""

import logging
import threading
import time
from urllib.parse import urlsplit

import kombu.exceptions
import redis
from django.conf import settings

from wiki import metrics

logger = logging.getLogger(__name__)
# What clients raise when the server is down, hung or refusing connections; an error
# Redis answers with (out of memory, a wrong command) is not an outage.
OUTAGE = (OSError, kombu.exceptions.OperationalError, redis.ConnectionError, redis.TimeoutError)


class CircuitBreaker:
    """Whether to ask the Redis server ``name`` now, and what happened when we did."""

    def __init__(self, name):
        self.name = name
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    @property
    def closed(self):
        """True when the service may be asked (it answered, or the pause is over)."""
        return time.monotonic() >= self._open_until

    def failed(self, error):
        """The service failed to answer: skip it for BREAKER_SECONDS."""
        metrics.REDIS_ERRORS.labels(self.name).inc()
        with self._lock:
            self._open_until = time.monotonic() + settings.REDIS_BREAKER_SECONDS
            first = not self._down
            self._down = True
        if first:
            logger.warning(
                "Redis at %s is unavailable, skipped for %s s at a time until it answers: %s: %s",
                self.name, settings.REDIS_BREAKER_SECONDS, type(error).__name__, error,
            )  # fmt: skip

    def succeeded(self):
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.warning("Redis at %s answers again.", self.name)

    def reset(self):
        """Forget any outage (for tests that start and stop their own Redis)."""
        with self._lock:
            self._open_until, self._down = 0.0, False


_breakers = {}


def of(url):
    """The breaker of the Redis server at ``url`` (one per host and port)."""
    parts = urlsplit(url or "")
    # Never the whole URL, which may hold a password: the name is a metric's label.
    name = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path or "local"
    if name not in _breakers:
        _breakers.setdefault(name, CircuitBreaker(name))
    return _breakers[name]


def reset_all():
    """Forget every outage (for tests that start and stop their own Redis)."""
    for each in _breakers.values():
        each.reset()
