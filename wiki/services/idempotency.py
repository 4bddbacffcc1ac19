"""Exactly-once record writes for retried requests (the Idempotency-Key header).

``run_once`` makes the write and stores its answer under (project, key) in one
transaction. The unique constraint on (project, key) is what guarantees one record: of
two requests racing with one key, the second's insert of the key waits for the first to
commit, fails, and takes the second's whole transaction (its record too) with it; that
request then answers with the stored first answer. A plain retry takes the same path:
the key is not looked up first, which would cost every first attempt a query to spare
the rare retry some work.
"""

import hashlib
import json

from django.db import IntegrityError, transaction

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


def _stored(project, key, request_fingerprint):
    stored = IdempotencyKey.objects.filter(project=project, key=key).first()
    if stored is not None and stored.fingerprint != request_fingerprint:
        raise KeyReused
    return stored


def run_once(project, key, request_fingerprint, write):
    """Run ``write()`` -> (status, body) once per (project, key); returns (status, body,
    replayed). A replay returns the first answer; another request under the key raises
    KeyReused. If ``write`` raises, nothing is stored and a retry runs it again.
    """
    try:
        with transaction.atomic():
            status, body = write()
            IdempotencyKey.objects.create(
                project=project, key=key, fingerprint=request_fingerprint,
                response_status=status, response_body=body,
            )  # fmt: skip
        return status, body, False
    except IntegrityError:
        # A request with the same key committed first; our write was rolled back.
        stored = _stored(project, key, request_fingerprint)
        if stored is None:
            raise  # some other constraint failed: not ours to hide
    return stored.response_status, stored.response_body, True
