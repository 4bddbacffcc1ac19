"""The access stamp: one counter that says when anything deciding access last changed."""

from django.db import IntegrityError, models, transaction
from django.db.models import F

STAMP_ID = 1


class AccessStamp(models.Model):
    """A single row whose ``version`` is bumped in the transaction of every change to API
    tokens, memberships, users and groups (wiki.signals). Each process caches token and
    rights lookups under it (wiki.access), and drops them when a request reads a new one.
    Bookkeeping, not a document: no history."""

    version = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"access version {self.version}"

    @staticmethod
    def bump():
        """Add one to the version, in the caller's transaction."""
        if not AccessStamp.objects.filter(pk=STAMP_ID).update(version=F("version") + 1):
            # The row is made by the migration; only a flushed database (a test) lacks it.
            try:
                with transaction.atomic():
                    AccessStamp.objects.create(pk=STAMP_ID, version=1)
            except IntegrityError:  # made meanwhile by another process: bump that one
                AccessStamp.objects.filter(pk=STAMP_ID).update(version=F("version") + 1)
