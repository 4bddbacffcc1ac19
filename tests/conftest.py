import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import redis
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, make_token
from wiki import access, breaker
from wiki.celery import app as celery_app
from wiki.models import Membership


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    # Fast password hashing; plain static files (no collectstatic manifest in tests).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    # Exports are written here, never in the checkout.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _redis_breakers_closed():
    """Each test starts with Redis presumed up (wiki.breaker keeps outages per process)."""
    breaker.reset_all()


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run in-process unless a test starts a real worker (see test_celery_worker)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def client_logged_in(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client_logged_in(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def project(user):
    """The project "churn", which ``user`` (alice) maintains."""
    project = ProjectFactory(slug="churn", name="Churn model")
    Membership.objects.create(project=project, user=user, role=Membership.Role.MAINTAINER)
    return project


@pytest.fixture
def api():
    """api(key) -> a client that sends ``Authorization: Token <key>`` and JSON."""

    def client_for(key=None, scheme="Token"):
        client = APIClient()
        if key:
            client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
        return client

    return client_for


@pytest.fixture
def pipeline_key(user, project):
    """A records:write key for the ``project`` fixture only."""
    return make_token(user, scopes=["records:write"], projects=[project.slug])[1]


@pytest.fixture
def webhook():
    """A webhook receiver on 127.0.0.1: ``url``, ``received`` (the JSON bodies, in order)
    and ``statuses`` (what to answer the next requests with; 200 once they run out)."""
    hook = SimpleNamespace(received=[], statuses=[])

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret"
    yield hook
    server.shutdown()
    server.server_close()


class RedisServer:
    """A redis-server of the test's own on 127.0.0.1 (nothing kept on disk), which it may
    stop, start again (empty), pause (SIGSTOP: it accepts connections but never answers,
    as a hung server does) and resume. The machine's own Redis is never touched."""

    def __init__(self, directory):
        with socket.socket() as probe:  # a free port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start in 30 s"
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def client(self):
        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture
def own_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server (Debian's redis-server package)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.resume()
    if server.process.poll() is None:
        server.stop()


@pytest.fixture
def broker_at():
    """broker_at(url): Celery sends its messages to ``url`` (then back to the usual one),
    and stops running tasks in-process."""
    conf = celery_app.conf
    previous = conf.broker_url

    def switch(url):
        conf.broker_url = url
        conf.task_always_eager = False
        celery_app._after_fork()  # drops the pooled connections to the old broker

    yield switch
    conf.broker_url = previous
    celery_app._after_fork()


@pytest.fixture(autouse=True)
def _access_cache_empty():
    """Each test starts with this process's access cache empty (wiki.access): ids and the
    access version come back the same after a test's rollback."""
    access.forget_all()
    yield
    access.forget_all()
