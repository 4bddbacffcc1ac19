"""/readyz/: 200 while the database, the broker and the storage answer, 503 naming the one
that does not, whether it is down or hung, and 200 again once it is back."""

import socket
import threading

import pytest
from django.db import connection
from django.test import Client

from tests.test_outages import database_down  # noqa: F401  (a fixture)
from tests.test_settings import manage
from tests.test_storage import s3  # noqa: F401  (a fixture)
from tests.workers import until


def readyz(**headers):
    return Client().get("/readyz/", **headers)


def closed_port():
    """A port nothing listens on: bound once to find it, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def failed(response):
    assert response.status_code == 503, response.content
    return response.json()["failed"]


@pytest.mark.django_db
def test_ready_when_everything_answers(settings):
    response = readyz()
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "ok"
    expected = {"database", "storage"} | ({"broker"} if settings.CELERY_BROKER_URL else set())
    assert body["checks"] == dict.fromkeys(expected, "ok")


@pytest.mark.django_db
def test_the_probe_passes_host_validation_and_the_https_redirect(settings):
    # The kubelet asks the pod's address over plain HTTP.
    settings.ALLOWED_HOSTS = ["wiki.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert readyz(HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert Client().head("/readyz/", HTTP_HOST="10.1.2.3:8000").status_code == 200


@pytest.mark.django_db
def test_a_broker_nobody_listens_on_is_named_without_its_address_or_password(settings):
    port = closed_port()
    settings.CELERY_BROKER_URL = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    response = readyz()
    assert failed(response) == ["broker"]
    assert response.json()["checks"]["broker"] == "unavailable"
    assert response.json()["checks"]["database"] == "ok"
    assert b"hunter2" not in response.content and str(port).encode() not in response.content


@pytest.mark.django_db
def test_a_hung_then_stopped_redis_is_a_503_and_200_once_it_answers(settings, own_redis):
    settings.CELERY_BROKER_URL = own_redis.url
    assert readyz().status_code == 200

    own_redis.pause()  # accepts connections, never answers
    # Not answered in time ("timeout"), or the client's own socket timeout fired first.
    assert failed(readyz()) == ["broker"]
    # A second probe waits on the check already in flight instead of starting another.
    assert failed(readyz()) == ["broker"]
    hung = [t for t in threading.enumerate() if t.name == "readyz-broker"]
    assert len(hung) <= 1
    own_redis.resume()
    until(lambda: readyz().status_code == 200, "ready once Redis answers again")

    own_redis.stop()
    assert failed(readyz()) == ["broker"]
    own_redis.start()
    until(lambda: readyz().status_code == 200, "ready once Redis is started again")


def test_a_database_that_cannot_be_reached_is_a_503_then_200(database_down):  # noqa: F811
    assert readyz().status_code == 200
    saved = dict(connection.settings_dict)
    database_down()
    response = readyz()
    assert failed(response) == ["database"]
    assert response.json()["checks"]["database"] == "unavailable"
    assert b"nonexistent" not in response.content and b"127.0.0.1" not in response.content
    connection.settings_dict.update(saved)
    assert readyz().status_code == 200


def test_a_hung_database_is_a_503_within_the_timeout_then_200(transactional_db, settings):
    # The database client has no timeout of its own (it waits for the server's answer):
    # only the probe's thread and its deadline keep the request from hanging.
    if connection.vendor == "sqlite":
        pytest.skip("an SQLite database is a file: no server to hang")
    saved = dict(connection.settings_dict)
    settings.READYZ_TIMEOUT = 0.2
    # A server that accepts connections and never answers: a listening socket nobody reads.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        try:
            connection.settings_dict["HOST"], connection.settings_dict["PORT"] = hung.getsockname()
            response = readyz()
            assert failed(response) == ["database"]
            assert response.json()["checks"]["database"] == "timeout"
            # A second probe waits on the same check, still in flight.
            assert failed(readyz()) == ["database"]
            waiting = [t for t in threading.enumerate() if t.name == "readyz-database"]
            assert len(waiting) == 1
        finally:
            connection.settings_dict.update(saved)
    # Closing the socket ended the connection the check was waiting on.
    until(lambda: readyz().status_code == 200, "ready once the database answers")


@pytest.mark.django_db
def test_a_post_is_not_answered_by_the_probe():
    # Only GET and HEAD are probes; anything else goes on to the app (and its login).
    assert Client().post("/readyz/").status_code != 200


@pytest.mark.parametrize("name", ["READYZ_TIMEOUT", "BEAT_LOCK_SECONDS"])
def test_a_timeout_that_is_not_above_zero_is_refused_at_start(name):
    result = manage("check", **{name: "0"})
    assert result.returncode != 0
    assert name in result.stderr


@pytest.mark.django_db
def test_a_bucket_that_stops_or_hangs_is_named_and_ready_again_once_back(s3):  # noqa: F811
    # The first probe of a new bucket also builds its S3 client (wiki.storage._probe), which
    # on a busy machine can take longer than READYZ_TIMEOUT: wait for the ready answer.
    until(lambda: readyz().status_code == 200, "ready with the bucket answering")
    s3.pause()  # hung: accepts, never answers
    try:
        response = readyz()
        assert failed(response) == ["storage"]
        assert response.json()["checks"]["storage"] in {"timeout", "unavailable"}
        assert s3.endpoint_url.encode() not in response.content
    finally:
        s3.resume()
    until(lambda: readyz().status_code == 200, "/readyz/ did not turn 200 again")
    s3.stop()
    assert failed(readyz()) == ["storage"]
    s3.start()
    until(lambda: readyz().status_code == 200, "/readyz/ did not turn 200 again")
