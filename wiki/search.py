"""Search over project names and summaries, pages (titles, fields, bodies) and training
runs (notes, tags, datasets).

Each searchable object has a SearchEntry, written in the transaction of every change
(``index``, on each new history row, so no write path can forget it). On PostgreSQL the
entry stores its tsvector (title weighted above text, English stemming) behind a GIN
index, and a search is ranked full-text with highlighted snippets; on SQLite it is a
plain substring search. Results are limited to the projects the caller may see.
"""

import re

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Case, F, Q, When
from django.db.models.expressions import RawSQL
from django.utils.html import escape
from django.utils.safestring import mark_safe

from wiki.categories import MARKDOWN
from wiki.diff import as_text
from wiki.models import Page, Project, SearchEntry, TrainingRun
from wiki.rendering import plain_text

CONFIG = "english"
SNIPPET_WORDS = 30
# Markers around matches in snippets, replaced by <mark> once the snippet is escaped. A
# text that holds these control characters itself gets a stray <mark>, nothing worse.
START, STOP = "\x02", "\x03"
MAX_QUERY = 200


def _texts(*parts):
    return "\n".join(p for p in parts if p)


def entry_values(obj):
    """(kind, project id, title, category, slug, text) of a project, page or run; None for
    anything else."""
    name = obj._meta.model_name
    if name == "project":
        text = _texts(obj.summary, obj.owner_team, " ".join(obj.tags))
        return "project", obj.pk, obj.name, "", "", text
    if name == "page":
        # Markdown as the words a reader sees, so snippets show no table rules or [[links]].
        spec = obj.spec
        fields = [
            plain_text(value) if f.kind == MARKDOWN else as_text(value, f.kind)
            for f in (spec.fields_for(obj.fields) if spec else ())
            if (value := obj.fields.get(f.name))
        ]
        text = _texts(*fields, plain_text(obj.body))
        return "page", obj.project_id, obj.title, obj.category, obj.slug, text
    if name == "trainingrun":
        tags = " ".join(f"{k} {v}" for k, v in obj.tags.items())
        dataset = " ".join(x for x in (obj.dataset_name, obj.dataset_version) if x)
        title = f"Training run #{obj.pk} of {obj.model_version.version}"
        return "run", obj.project_id, title, "", "", _texts(obj.notes, tags, dataset)
    return None


# An entry's tsvector, computed by PostgreSQL as the row is written: the title weighted
# above the text. Parameters: CONFIG, title, CONFIG, text.
VECTOR_SQL = (
    "setweight(to_tsvector(%s::regconfig, %s), 'A') "
    "|| setweight(to_tsvector(%s::regconfig, %s), 'B')"
)


def _insert(kind, object_id, fields):
    """INSERT a new entry."""
    _insert_many([(kind, object_id, fields)])


def _insert_many(entries, together=None):
    """INSERT new entries [(kind, object id, fields)], all with the same fields, in one
    statement (sent now, or added to ``together``: wiki.statements). Raw SQL: every
    record post makes one, and the ORM took longer to compile the tsvector expression
    than PostgreSQL took to compute it."""
    names = list(entries[0][2])
    columns = ["kind", "object_id", *names]
    placeholders = ["%s"] * len(columns)
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        columns.append("vector")
        placeholders.append(VECTOR_SQL)
    row = f"({', '.join(placeholders)})"
    values = []
    for kind, object_id, fields in entries:
        values += [kind, object_id, *(fields[name] for name in names)]
        if postgresql:
            values += [CONFIG, fields["title"], CONFIG, fields["text"]]
    table = connection.ops.quote_name(SearchEntry._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - our column names
        f"VALUES {', '.join([row] * len(entries))}"
    )
    if together is not None:
        together.add(sql, values)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


def _fields(values):
    _, project_id, title, category, slug, text = values
    return {"project_id": project_id, "title": title[:300], "category": category,
            "slug": slug, "text": text}  # fmt: skip


def index_new(instances, together=None):
    """The search entries of new objects (a batch of records), in one statement (sent
    now, or added to ``together``): what ``index`` does for each new history row, for
    many at once."""
    entries = []
    for instance in instances:
        values = entry_values(instance)
        if values is not None:
            entries.append((values[0], instance.pk, _fields(values)))
    if entries:
        _insert_many(entries, together)


def index(history_instance, instance):
    """Bring the search entry of ``instance`` up to date (wiki.signals calls it after every
    history row is written, in the write's transaction)."""
    values = entry_values(instance)
    if values is None:
        return
    kind, text, fields = values[0], values[5], _fields(values)
    if history_instance.history_type == "+":  # a new object
        _insert(kind, instance.pk, fields)
        return
    vector = {}
    if connection.vendor == "postgresql":
        vector["vector"] = RawSQL(VECTOR_SQL, [CONFIG, fields["title"], CONFIG, text])  # noqa: S611 - values are parameters
    # A changed object: its entry updated (created if missing, e.g. lost to a bug).
    if not SearchEntry.objects.filter(kind=kind, object_id=instance.pk).update(**fields, **vector):
        _insert(kind, instance.pk, fields)


def reindex():
    """Write every search entry anew (`manage.py reindex_search`): run it once after an
    upgrade that changes what is indexed. Returns how many entries were written."""
    SearchEntry.objects.all().delete()
    written = 0
    for model in (Project, Page, TrainingRun):
        objects = model.objects.all()
        if model._meta.model_name == "trainingrun":
            objects = objects.select_related("model_version")
        batch = []
        for obj in objects.iterator(chunk_size=2000):
            kind, project_id, title, category, slug, text = entry_values(obj)
            batch.append(
                SearchEntry(kind=kind, object_id=obj.pk, project_id=project_id,
                      title=title[:300], category=category, slug=slug, text=text)
            )  # fmt: skip
            if len(batch) == 2000:
                SearchEntry.objects.bulk_create(batch)
                written, batch = written + len(batch), []
        SearchEntry.objects.bulk_create(batch)
        written += len(batch)
    if connection.vendor == "postgresql":
        SearchEntry.objects.update(
            vector=SearchVector("title", weight="A", config=CONFIG)
            + SearchVector("text", weight="B", config=CONFIG)
        )
    return written


def _highlight(snippet):
    return mark_safe(  # noqa: S308  escaped first; only our markers become tags
        escape(snippet).replace(START, "<mark>").replace(STOP, "</mark>")
    )


def _plain_snippet(text, words):
    """Around the first word found in ``text``: about SNIPPET_WORDS words, matches marked."""
    lowered = text.lower()
    found = [lowered.find(w.lower()) for w in words if lowered.find(w.lower()) >= 0]
    start = max(0, min(found) - 80) if found else 0
    piece = text[start : start + 240]
    for word in words:
        piece = re.sub(re.escape(word), lambda m: START + m.group(0) + STOP, piece, flags=re.I)
    return ("…" if start else "") + piece + ("…" if start + 240 < len(text) else "")


def clean_query(q):
    """The words of ``q``: whitespace collapsed, control characters dropped, bounded."""
    q = "".join(c if c.isprintable() else " " for c in q)
    return " ".join(q.split())[:MAX_QUERY]


def search(q, projects):
    """Entries of ``projects`` (a queryset) that match ``q``, best first, each with
    ``project`` and a ``snippet`` (safe HTML: escaped text, matches in <mark>)."""
    q = clean_query(q)
    entries = SearchEntry.objects.filter(project__in=projects).select_related("project")
    if not q:
        return entries.none()
    if connection.vendor == "postgresql":
        query = SearchQuery(q, search_type="websearch", config=CONFIG)
        headline = SearchHeadline(
            "text", query, config=CONFIG, start_sel=START, stop_sel=STOP,
            max_words=SNIPPET_WORDS, min_words=SNIPPET_WORDS // 2, max_fragments=2,
        )  # fmt: skip
        return (
            entries.filter(vector=query)
            .annotate(rank=SearchRank(F("vector"), query), headline=headline)
            .order_by("-rank", "kind", "id")
        )
    words = q.split()
    matches = Q()
    for word in words:
        matches &= Q(title__icontains=word) | Q(text__icontains=word)
    # No ranking here: matches in the title first.
    in_title = Case(When(title__icontains=words[0], then=1), default=0)
    return entries.filter(matches).order_by(-in_title, "kind", "title", "id")


def snippet(entry, q):
    """The entry's highlighted snippet for ``q``."""
    if getattr(entry, "headline", None) is not None:
        return _highlight(entry.headline)
    return _highlight(_plain_snippet(entry.text, clean_query(q).split()))
