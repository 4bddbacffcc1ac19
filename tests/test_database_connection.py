"""A persistent PostgreSQL connection is checked before each request without a round trip
(wiki.postgresql), and one the server dropped is replaced with no error to anybody."""

import json
import urllib.request

import pytest
from django.db import connection, connections

from tests.factories import make_token
from tests.workers import start_web, stop, until, until_serving

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the health check replaced is PostgreSQL's (SQLite has no server to drop it)",
)


def backends():
    """The process ids of the other sessions on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def terminate(pids):
    """End the sessions ``pids`` as a server restart or an idle timeout would, and wait
    until they are gone."""
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    until(lambda: not (backends() & pids), "the sessions ended")


@pytest.fixture
def other_connection(transactional_db):
    """A second connection to the test database, through the app's own backend."""
    other = connections.create_connection("default")
    other.ensure_connection()
    yield other
    other.close()


def test_the_backend_is_the_apps_own():
    assert connection.settings_dict["ENGINE"] == "wiki.postgresql"
    assert connection.vendor == "postgresql"


def test_the_health_check_sends_no_query(other_connection):
    with other_connection.connection.cursor() as cursor:
        cursor.execute("SELECT 42")
    assert other_connection.is_usable()
    pid = other_connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        assert cursor.fetchone() == ("SELECT 42",)  # its last query: no SELECT 1 since


def test_a_connection_the_server_ended_is_found_unusable(other_connection):
    assert other_connection.is_usable()
    terminate({other_connection.connection.info.backend_pid})
    until(lambda: not other_connection.is_usable(), "the ended session found unusable")


def test_a_dropped_connection_is_replaced_on_the_next_request(transactional_db, user, project):
    key = make_token(user, scopes=["read"], projects=["churn"])[1]
    server = start_web(WEB_CONCURRENCY="1", DB_CONN_MAX_AGE="600")
    try:
        until_serving(server)

        def runs():
            request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
                f"{server.url}/api/v1/projects/churn/training-runs/",
                headers={"Authorization": f"Token {key}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read())

        assert runs()[0] == 200
        before = backends()
        assert before, "the worker keeps its connection between requests"
        assert runs()[0] == 200
        assert backends() == before  # the same connection served the second request
        terminate(before)
        status, body = runs()  # an HTTPError (a 503) would fail the test here
        assert status == 200
        assert body["results"] == []
        assert backends() and not (backends() & before)  # a new connection
    finally:
        stop([server])
