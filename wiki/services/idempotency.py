"""Exactly-once record writes for retried requests (the Idempotency-Key header).

The caller runs, in one transaction: ``claim()``, the write, ``complete()``. The claim
inserts the (project, key) row; a concurrent request with the same key blocks on the
unique constraint until the first commits, then finds its answer. If the write fails the
transaction takes the claim with it, so a retry runs the write again.
"""

import hashlib
import json

from django.db import IntegrityError, transaction

from wiki.models import IdempotencyKey

KEY_MAX_LENGTH = IdempotencyKey._meta.get_field("key").max_length


class Replay(Exception):
    """The key was used before for the same request: ``stored`` holds the first answer."""

    def __init__(self, stored):
        super().__init__("replay")
        self.stored = stored


class KeyReused(Exception):
    """The key was used before for a different request."""


def fingerprint(method, path, data):
    """A hash of a request that ignores JSON formatting and key order."""
    canonical = json.dumps([method, path, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def valid_key(key):
    """Keys are 1 to 255 printable ASCII characters (what a header safely carries)."""
    return 0 < len(key) <= KEY_MAX_LENGTH and all(" " <= c <= "~" for c in key)


def claim(project, key, request_fingerprint):
    """Reserve ``key`` for this request; raises Replay or KeyReused if it was used before.

    Must run inside the transaction that makes the write.
    """
    slot = IdempotencyKey(
        project=project, key=key, fingerprint=request_fingerprint, response_status=0,
        response_body={},
    )  # fmt: skip
    try:
        with transaction.atomic():
            slot.save()
    except IntegrityError:
        stored = IdempotencyKey.objects.get(project=project, key=key)
        if stored.fingerprint != request_fingerprint:
            raise KeyReused from None
        raise Replay(stored) from None
    return slot


def complete(slot, status, body):
    """Store the answer to replay for ``slot``'s key."""
    slot.response_status, slot.response_body = status, body
    slot.save(update_fields=["response_status", "response_body"])
