"""Every signal receiver of mlwiki: what happens on the side of a write, in one place.

- ``stamp_revision`` (before a history row is written): who, why, from where, request id
  (wiki.history);
- ``seal_revision`` (after): the row is linked into its project's audit chain
  (wiki.audit);
- ``index_revision`` (after): the object's search entry follows it (wiki.search);
- ``note_login`` (a user logged in): the time, without making the login a revision;
- ``access_changed`` (a token, membership, user or group saved or deleted, or a user's
  groups changed): the access stamp is bumped, so every process drops what it cached of
  tokens and rights on its next request (wiki.access);
- ``access.forget_request`` (a request starts or ends): the access version a request
  read is never taken for the next one's.

All run in the transaction of the write, so a write and its side effects commit or roll
back together. Wired by ``connect()``, from WikiConfig.ready().
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, update_last_login
from django.contrib.auth.signals import user_logged_in
from django.core.signals import request_finished, request_started
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone
from simple_history.signals import post_create_historical_record, pre_create_historical_record

from wiki import access, audit, history, search
from wiki.models import AccessStamp, ApiToken, Membership


def stamp_revision(sender, history_instance, **kwargs):
    history.stamp(history_instance)


def seal_revision(sender, history_instance, instance=None, **kwargs):
    audit.append(history_instance, instance)


def index_revision(sender, history_instance, instance=None, **kwargs):
    if instance is not None:
        search.index(history_instance, instance)


def note_login(sender, user, **kwargs):
    """Django's own receiver saves the user, which would make every login a revision of
    the account: the time is written with a plain UPDATE instead."""
    type(user).objects.filter(pk=user.pk).update(last_login=timezone.now())


def access_changed(sender, **kwargs):
    """In the transaction of the change (every service and the admin write in one)."""
    if kwargs.get("action", "post_").startswith("post_"):
        AccessStamp.bump()


def connect():
    pre_create_historical_record.connect(stamp_revision, dispatch_uid="wiki.stamp_revision")
    post_create_historical_record.connect(seal_revision, dispatch_uid="wiki.seal_revision")
    post_create_historical_record.connect(index_revision, dispatch_uid="wiki.index_revision")
    user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
    user_logged_in.connect(note_login, dispatch_uid="wiki.note_login")
    user_model = get_user_model()
    for model in (ApiToken, Membership, user_model, Group):
        name = model._meta.label_lower
        post_save.connect(access_changed, sender=model, dispatch_uid=f"wiki.saved:{name}")
        post_delete.connect(access_changed, sender=model, dispatch_uid=f"wiki.deleted:{name}")
    m2m_changed.connect(
        access_changed, sender=user_model.groups.through, dispatch_uid="wiki.user_groups"
    )
    request_started.connect(access.forget_request, dispatch_uid="wiki.access_request_started")
    request_finished.connect(access.forget_request, dispatch_uid="wiki.access_request_finished")
