"""The file storage (Django's default storage): MEDIA_ROOT on the local disk, or an
S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set (settings.py). What the app
needs of it beyond the storage API: telling an outage from a missing file, and whether
it answers at all (for the readiness probe)."""

import functools
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.core.files.storage import FileSystemStorage, storages

logger = logging.getLogger(__name__)
# Seconds a client is told to wait (Retry-After) while the storage does not answer.
RETRY_AFTER = 30


class Unavailable(Exception):
    """The storage did not answer, or refused to (a timeout, a server error, credentials
    it does not accept): worth trying again later, and never the caller's fault."""


def is_local():
    """Whether files are on the local disk (MEDIA_ROOT), where a move is a rename."""
    return isinstance(storages["default"], FileSystemStorage)


@contextmanager
def answering():
    """Turns what the S3 client raises into Unavailable. A missing file stays a
    FileNotFoundError (the storage backend raises it for a 404)."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        # botocore's messages name the endpoint and the operation, never the keys.
        raise Unavailable(f"The file storage did not answer: {error}") from error


def check(timeout=1.0):
    """Whether the storage answers within ``timeout`` seconds: the bucket can be reached
    with the configured credentials (one HEAD, no retry), or MEDIA_ROOT is (or can be
    made, as the first save would) a writable directory."""
    storage = storages["default"]
    if isinstance(storage, FileSystemStorage):
        # Looked at, not made: a probe changes nothing.
        existing = Path(storage.location)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        return existing.is_dir() and os.access(existing, os.W_OK)
    try:
        _probe(storage, timeout).head_bucket(Bucket=storage.bucket_name)
    except (BotoCoreError, ClientError) as error:
        logger.warning("The file storage does not answer: %s", error)
        return False
    return True


@functools.lru_cache(maxsize=8)
def _probe(storage, timeout):
    """An S3 client with the storage's session (its credentials) but timeouts of its own:
    the storage's are longer than a probe may wait. Kept, since making one takes longer
    than the probe's HEAD (boto3 clients may be shared between threads)."""
    config = storage.client_config.merge(
        Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    )
    return storage._create_session().client(
        "s3",
        region_name=storage.region_name,
        endpoint_url=storage.endpoint_url,
        use_ssl=storage.use_ssl,
        verify=storage.verify,
        config=config,
    )
