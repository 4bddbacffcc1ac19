"""Exactly-once record writes for retried requests (the Idempotency-Key header).

``run_once`` claims (project, key) first, in the transaction that makes the write, with an
insert that the unique constraint turns into nothing when the key exists. A request that
finds the key answers with the stored first answer without writing anything; one racing
a first request still in flight waits on the constraint until that one commits (then
replays) or rolls back (then claims the key itself). So however retries arrive, one
write happens and every retry gets its answer.
"""

import hashlib
import json

from django.db import connection, transaction
from django.utils import timezone

from wiki import metrics
from wiki.models import IdempotencyKey

KEY_MAX_LENGTH = IdempotencyKey._meta.get_field("key").max_length


class KeyReused(Exception):
    """The key was used before for a different request."""


def fingerprint(method, path, data):
    """A hash of a request that ignores JSON formatting and key order."""
    canonical = json.dumps([method, path, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_key(key):
    """Keys are 1 to 255 printable ASCII characters (what a header safely carries)."""
    return 0 < len(key) <= KEY_MAX_LENGTH and all(" " <= c <= "~" for c in key)


def _claim(project, key, request_fingerprint):
    """Insert the key's row (answer to come); its id, or None if the key is taken.

    INSERT … ON CONFLICT DO NOTHING (PostgreSQL and SQLite alike): unlike a plain insert,
    a taken key is no error, so no savepoint is needed around it.
    """
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, key, fingerprint, response_status, "  # noqa: S608
            "response_body, created_at) VALUES (%s, %s, %s, 0, %s, %s) "
            "ON CONFLICT (project_id, key) DO NOTHING RETURNING id",
            [project.pk, key, request_fingerprint, "{}", now],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def run_once(project, key, request_fingerprint, write):
    """Run ``write()`` -> (status, body) once per (project, key); returns (status, body,
    replayed). A replay returns the first answer; another request under the key raises
    KeyReused. If ``write`` raises, nothing is stored and a retry runs it again.
    """
    with transaction.atomic():
        claimed = _claim(project, key, request_fingerprint)
        if claimed is None:
            stored = IdempotencyKey.objects.get(project=project, key=key)
            if stored.fingerprint != request_fingerprint:
                raise KeyReused
            metrics.IDEMPOTENT_REPLAYS.inc()
            return stored.response_status, stored.response_body, True
        status, body = write()
        IdempotencyKey.objects.filter(pk=claimed).update(response_status=status, response_body=body)
    return status, body, False


def claim_many(project, prints):
    """Claim the keys of ``prints`` ({key: fingerprint}) in one statement, in the caller's
    transaction; the set of keys claimed (the others were taken).

    The rows go in sorted by key, so two batches that share keys lock them in the same
    order and never deadlock; a key a batch still in flight holds makes this wait until
    that batch commits (then it is taken) or rolls back (then it is claimed here).
    """
    if not prints:
        return set()
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = []
    for key in sorted(prints):
        params += [project.pk, key, prints[key], "{}", now]
    rows = ", ".join(["(%s, %s, %s, 0, %s, %s)"] * len(prints))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, key, fingerprint, response_status, "  # noqa: S608
            f"response_body, created_at) VALUES {rows} "
            "ON CONFLICT (project_id, key) DO NOTHING RETURNING key",
            params,
        )
        return {row[0] for row in cursor.fetchall()}


def stored(project, keys):
    """{key: IdempotencyKey} of ``keys`` already answered (one query)."""
    if not keys:
        return {}
    return {k.key: k for k in IdempotencyKey.objects.filter(project=project, key__in=keys)}


def answer_many(project, status, bodies):
    """Store the answers ``bodies`` ({key: JSON}) under the keys just claimed, with
    ``status``, in one statement (UPDATE … FROM VALUES: the ORM's CASE of one WHEN per
    key took longer to build than the database took to run it)."""
    if not bodies:
        return
    table = connection.ops.quote_name(IdempotencyKey._meta.db_table)
    body = "CAST(v.column2 AS jsonb)" if connection.vendor == "postgresql" else "v.column2"
    params = [status]
    for key, data in bodies.items():
        params += [key, json.dumps(data)]
    params.append(project.pk)
    rows = ", ".join(["(%s, %s)"] * len(bodies))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET response_status = %s, response_body = {body} "  # noqa: S608
            f"FROM (VALUES {rows}) AS v WHERE {table}.project_id = %s AND {table}.key = v.column1",
            params,
        )
