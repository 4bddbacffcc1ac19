"""Django's PostgreSQL backend whose health check asks the connection, not the server.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before the first query of
each request; its PostgreSQL backend does so with ``SELECT 1``, a round trip on every
request. Here the check reads what the client already knows: psycopg's own state (closed,
or in an unknown or failed transaction) and whether the server has written anything on
the idle socket. An idle, healthy connection has nothing to read; a server that ended
the session (a restart, pg_terminate_backend, an idle timeout) has sent its error and
closed the socket, which then polls readable. Either way the connection is closed and
the request's first query opens a new one. What no client can see without a round trip
is a peer that vanished without a word (a cut network): there, the request's first query
fails (a 503, wiki.middleware) and the next request reconnects, as psycopg then marks the
connection closed.
"""

import select

from django.db.backends.postgresql import base
from psycopg2 import extensions

# Transaction states of a connection fit for a new request (idle, outside any transaction;
# Django's persistent connections are in autocommit between requests).
_USABLE = {extensions.TRANSACTION_STATUS_IDLE}


def _peer_has_spoken(fileno):
    """Whether the socket has anything to read (or was closed) right now, without
    waiting."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        if self.connection is None or self.connection.closed:
            return False
        if self.connection.info.transaction_status not in _USABLE:
            return super().is_usable()  # inside a transaction: as Django, SELECT 1
        if not hasattr(select, "poll"):  # no poll() (Windows): as Django
            return super().is_usable()
        try:
            return not _peer_has_spoken(self.connection.fileno())
        except (OSError, ValueError):
            return False
