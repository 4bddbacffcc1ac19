import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, UserFactory, make_token
from wiki import breaker
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
    for each in (breaker.throttle, breaker.cache, breaker.broker):
        each.reset()


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
