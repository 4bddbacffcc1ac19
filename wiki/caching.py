"""What the pages show, cached under what it is computed from, so nothing is ever
invalidated and nothing cached is ever stale: a changed input is a new key.

- A revision's rendered Markdown: its history row (id and time: a revision never
  changes), the renderer's version and the state of the pages its wiki links name (the
  project's pages version, and that of each other project it links to).
- A revision's first history row (who wrote it, when): the page, its revision number and
  the time its content last changed.
- The records summary and the charts, as HTML: the project's records version (the
  maintenance log's as data: its reasons' Markdown is cached as any Markdown is).
- The lines of a page's history page: the pages version.
- The tab marks (completeness, staleness) and a page's stale reasons: the records version
  and the pages version.
- Rendered fragments (wiki.caching.Fragment) carry their template's digest too.

Both versions are counters on Project bumped in the transaction of every write
(Project.records_changed, Project.pages_changed), read with the project at the start of
the request, so a reader after a write's commit always asks for a new key. A value
computed after a newer write committed may be stored under an older key: only readers
that started before that commit ask for it, and they get fresher data, never older.
Every key also carries the project's id and creation time, so a database recreated with
the same ids (a test database) never finds another's values.

The cache is Django's default one: in-process memory, or Redis when REDIS_URL is set. It
is never needed for correctness: when Redis is down or hung, every call here misses
at once (wiki.breaker) and the value is computed as if nothing were cached.
"""

import functools
import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.template.loader import get_template

from wiki import breaker

logger = logging.getLogger(__name__)

SECONDS = 7 * 24 * 3600

# In every key: bump it when what is cached changes shape or meaning (a summary's or a
# tab's fields, what makes a page complete), so a deploy never reads the old code's values.
VERSION = 1


def call(method, *args):
    """``cache.<method>(*args)``, or {} when the cache fails or is skipped: a cache outage
    makes a page slower, never a page fail, nor a slow one (after a failure the server is
    skipped for a few seconds, wiki.breaker)."""
    server = breaker.of(settings.CACHES["default"].get("LOCATION"))
    if not server.closed:
        return {}
    try:
        found = getattr(cache, method)(*args)
    except breaker.OUTAGE as error:
        server.failed(error)
        return {}
    except Exception:  # Redis answered, with an error (out of memory): not an outage
        logger.exception("The cache refused %s", method)
        return {}
    server.succeeded()
    return found


def stamp(moment):
    """A time as microseconds (a key part)."""
    return str(int(moment.timestamp() * 1_000_000)) if moment is not None else "-"


def digest(text):
    """A short hash of text that may be anything (a metric's name): keys stay short
    and printable."""
    return hashlib.sha256(str(text).encode()).hexdigest()[:24]


def _project(project):
    return f"{VERSION}:{project.pk}.{stamp(project.created_at)}"


def records_key(project, *parts):
    """A key for what is computed from ``project``'s records."""
    return ":".join(["rec", _project(project), str(project.records_version), *map(str, parts)])


def pages_key(project, *parts):
    """A key for what is computed from ``project``'s pages and their history."""
    return ":".join(["pages", _project(project), str(project.pages_version), *map(str, parts)])


def state_key(project, *parts):
    """A key for what is computed from ``project``'s records and pages."""
    versions = f"{project.records_version}.{project.pages_version}"
    return ":".join(["state", _project(project), versions, *map(str, parts)])


def revision_head_key(page):
    """A key for the history row that made ``page``'s current revision."""
    moments = f"{stamp(page.created_at)}:{page.revision}:{stamp(page.edited_at)}"
    return f"head:{VERSION}:{page.pk}.{moments}"


class Fragment:
    """A template whose output is cached: ``version`` (a key part) is a digest of its
    source, so a deploy that changes the template never reads the old one's output."""

    def __init__(self, name):
        self.name = name

    @functools.cached_property
    def template(self):
        return get_template(self.name)

    @functools.cached_property
    def version(self):
        return digest(self.template.template.source)

    def render(self, context):
        return self.template.render(context)


def get_or_compute(key, compute, timeout=SECONDS):
    """The value cached under ``key``, or ``compute()`` (then cached). None is a value."""
    found = call("get_many", [key])
    if key in found:
        return found[key][0]
    value = compute()
    call("set_many", {key: (value,)}, timeout)
    return value
