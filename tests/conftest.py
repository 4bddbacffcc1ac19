import pytest
from django.test import Client

from tests.factories import ProjectFactory, UserFactory
from wiki.celery import app as celery_app


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings):
    # Fast password hashing; plain static files (no collectstatic manifest in tests).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }


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
def project(db):
    return ProjectFactory(slug="churn", name="Churn model")
