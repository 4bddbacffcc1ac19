"""Every signal receiver of mlwiki: what happens on the side of a write, in one place.

- ``stamp_revision`` (before a history row is written): who, why, from where, request id
  (wiki.history);
- ``seal_revision`` (after): the row is linked into its project's audit chain
  (wiki.audit);
- ``index_revision`` (after): the object's search entry follows it (wiki.search);
- ``note_login`` (a user logged in): the time, without making the login a revision.

All run in the transaction of the write, so a write and its side effects commit or roll
back together. Wired by ``connect()``, from WikiConfig.ready().
"""

from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in
from django.utils import timezone
from simple_history.signals import post_create_historical_record, pre_create_historical_record

from wiki import audit, history, search


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


def connect():
    pre_create_historical_record.connect(stamp_revision, dispatch_uid="wiki.stamp_revision")
    post_create_historical_record.connect(seal_revision, dispatch_uid="wiki.seal_revision")
    post_create_historical_record.connect(index_revision, dispatch_uid="wiki.index_revision")
    user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
    user_logged_in.connect(note_login, dispatch_uid="wiki.note_login")
