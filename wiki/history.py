"""Who changed what, from where and why: the facts every revision records.

Service functions run their writes inside ``recording(actor, reason)``; every historical
row created meanwhile (django-simple-history) is stamped with the acting user, the user
name as text, the API token (id and name) if any, the source, the reason and a request id
(a UUID shared by everything one request, command or task changed). A change that comes
from another system's record of it also names that record, its origin (``Origin``): the
git commit a docs push was made from, the MLflow run an import read. Outside a service, a
write during a request is stamped with the request's user and source (the admin's user
pages, say); a write outside any request and any recording context (a stray ``save()`` in
the shell, a data migration) is still kept, with source ``system``.
"""

import functools
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.manager import HistoryManager

CHANGE_REASON_MAX_LENGTH = 1000


class Source(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    SYSTEM = "system", "System"
    CLI = "cli", "Command line"
    SSO = "sso", "Single sign-on"


@dataclass(frozen=True)
class Actor:
    """The user (None for the system itself), the channel a change comes through, and the
    API token it was made with, if any."""

    user: object
    source: str
    token: object = None

    @property
    def username(self):
        return self.user.get_username() if self.user is not None else ""


SYSTEM = Actor(user=None, source=Source.SYSTEM)


def git_origin(*, repository, branch, commit):
    """The origin of a change pushed from a git repository: which commit of which branch."""
    return {"tool": "git", "repository": repository, "branch": branch, "commit": commit}


def mlflow_origin(*, tracking_uri, run_id=None, model=None, version=None):
    """The origin of a record imported from an MLflow tracking server: which run, or
    which version of which registered model."""
    if run_id is not None:
        return {"tool": "mlflow", "tracking_uri": tracking_uri, "run_id": run_id}
    return {"tool": "mlflow", "tracking_uri": tracking_uri, "model": model, "version": version}


# (actor, reason, request id, origin) of the innermost recording block.
_current = ContextVar("mlwiki_revision", default=None)
# (request id, function returning the request's actor) while a request is served.
_request = ContextVar("mlwiki_request", default=None)


@contextmanager
def request_scope(request_id, actor):
    """Everything changed inside belongs to one request: ``request_id``, and ``actor()``
    (called only if needed) for writes made outside the services."""
    token = _request.set((request_id, actor))
    try:
        yield
    finally:
        _request.reset(token)


def current_request_id():
    scope = _request.get()
    return scope[0] if scope else None


def check_reason(reason):
    """A change reason must be text a history row can hold."""
    if not isinstance(reason, str):
        raise ValidationError({"change_reason": "The change reason must be text."})
    if len(reason) > CHANGE_REASON_MAX_LENGTH:
        raise ValidationError(
            {"change_reason": f"At most {CHANGE_REASON_MAX_LENGTH} characters, please."}
        )
    if "\x00" in reason:
        raise ValidationError({"change_reason": "Must not contain NUL (\\x00) characters."})
    return reason.strip()


@contextmanager
def recording(actor, reason, origin=None):
    """Stamp every revision saved inside the block with ``actor``, ``reason`` and the
    ``origin`` of the change (``git_origin``, ``mlflow_origin``), if it has one.

    The reason is checked first (ValidationError), so a bad one stops the write.
    """
    reason = check_reason(reason)
    outer = _current.get()
    # One id for all a request changed; outside a request, one per outermost block.
    request_id = current_request_id() or (outer[2] if outer else uuid.uuid4())
    token = _current.set((actor, reason, request_id, origin))
    try:
        yield
    finally:
        _current.reset(token)


class RevisionManager(HistoryManager):
    """simple-history's manager of revisions, whose class is built once.

    Every save reads ``instance.history``, and simple-history's descriptor builds a new
    manager class from the queryset class each time (``from_queryset`` calls ``type()``):
    a measurable share of a record post's CPU. The class only depends on its arguments.
    """

    @classmethod
    @functools.cache
    def from_queryset(cls, queryset_class, class_name=None):
        return super().from_queryset(queryset_class, class_name)


class RevisionInfo(models.Model):
    """Extra columns of every historical model, beside simple-history's own."""

    history_source = models.CharField(max_length=10, choices=Source.choices, default=Source.SYSTEM)
    # Copied as text so the record survives the deletion or renaming of the account.
    history_username = models.CharField(max_length=150, blank=True)
    # The API token a change was made with (id and name as text: tokens may be deleted).
    history_token_id = models.PositiveBigIntegerField(null=True, blank=True)
    history_token_name = models.CharField(max_length=100, blank=True)
    # Shared by every row one request (or command, or task) wrote; X-Request-ID tells clients.
    history_request_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Where another system records this change ({"tool": …}: wiki.history.git_origin);
    # null for the changes made here. Null is not hashed into the audit chain, so rows
    # written before the column existed verify as they were sealed.
    history_origin = models.JSONField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def origin_label(self):
        """The origin as a history line says it: "git a1b2c3d4e5f6 (main)"."""
        origin = self.history_origin or {}
        if origin.get("tool") == "git":
            branch = f" ({origin['branch']})" if origin.get("branch") else ""
            return f"git {origin['commit'][:12]}{branch}"
        if origin.get("tool") == "mlflow" and "run_id" in origin:
            return f"MLflow run {origin['run_id']}"
        if origin.get("tool") == "mlflow":
            return f"MLflow model {origin['model']} version {origin['version']}"
        return origin.get("tool", "")

    @property
    def origin_url(self):
        """The origin's web page, where it has one: a commit of a repository served over
        http(s) (GitHub, GitLab and Gitea all answer <repository>/commit/<sha>)."""
        origin = self.history_origin or {}
        repository = origin.get("repository", "")
        if origin.get("tool") != "git" or not repository.startswith(("https://", "http://")):
            return ""
        return f"{repository.rstrip('/').removesuffix('.git')}/commit/{origin['commit']}"


def stamp(history_instance):
    """Fill a new history row's revision facts from the context (wiki.signals calls it
    before every history row is written)."""
    current = _current.get()
    scope = _request.get()
    if current is not None:
        actor, reason, request_id, origin = current
        history_instance.history_change_reason = reason
        history_instance.history_origin = origin
    elif scope is not None:
        request_id, actor = scope[0], scope[1]()
    else:
        actor, request_id = SYSTEM, uuid.uuid4()
    history_instance.history_user = actor.user
    history_instance.history_username = actor.username
    history_instance.history_source = actor.source
    history_instance.history_request_id = request_id
    if actor.token is not None:
        history_instance.history_token_id = actor.token.pk
        history_instance.history_token_name = actor.token.name
