"""The audit chain's links and heads, and what search finds (both derived from history)."""

from django.contrib.postgres.search import SearchVectorField
from django.db import models

from wiki.models.projects import Project


class SearchEntry(models.Model):
    """What search finds of a project, a page or a training run: its title and text, and
    on PostgreSQL their stored, GIN-indexed tsvector. Kept up to date in the transaction
    of every write (wiki.search.index, on each new history row)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12)
    object_id = models.BigIntegerField()
    title = models.CharField(max_length=300)
    category = models.CharField(max_length=20, blank=True)
    slug = models.CharField(max_length=60, blank=True)
    text = models.TextField(blank=True)
    vector = SearchVectorField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="search_entry_unique")
        ]

    def __str__(self):
        return f"{self.kind} {self.object_id}: {self.title}"


class ChainHead(models.Model):
    """The end of an audit chain (one per project, one global): the last entry's number and
    digest, locked by every append so concurrent writers never fork the chain; and what
    the latest verification found."""

    key = models.CharField(max_length=40, unique=True)
    project = models.OneToOneField(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="chain"
    )
    seq = models.PositiveBigIntegerField(default=0)
    digest = models.CharField(max_length=64)
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_ok = models.BooleanField(null=True)
    verified_entries = models.PositiveBigIntegerField(default=0)
    first_bad = models.JSONField(null=True, blank=True)

    def __str__(self):
        return self.key


class AuditEntry(models.Model):
    """One history row's link in its chain: digest = SHA-256(previous digest + canonical
    JSON of the row); seal = HMAC-SHA-256(AUDIT_HMAC_KEY, digest). The other columns copy
    what the activity log filters and shows."""

    chain = models.ForeignKey(ChainHead, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveBigIntegerField()
    table = models.CharField(max_length=100)
    history_id = models.BigIntegerField()
    object_id = models.BigIntegerField()
    kind = models.CharField(max_length=40)
    action = models.CharField(max_length=1)
    at = models.DateTimeField()
    username = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=10)
    reason = models.TextField(blank=True)
    request_id = models.UUIDField(null=True, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    digest = models.CharField(max_length=64)
    seal = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_entry_unique_seq")
        ]
        indexes = [
            models.Index(fields=["chain", "table", "history_id"]),
            models.Index(fields=["chain", "at"]),
        ]

    def __str__(self):
        return f"{self.chain.key}#{self.seq}"
