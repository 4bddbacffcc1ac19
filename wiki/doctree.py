"""A project's documentation as a tree of files, to keep beside the code (issue 14, item 2).

Each page is ``<slug>.md``: YAML front matter (``page``: its slug, ``title``, and for a
category page every structured ``fields`` value, empty ones included, in the registry's
order) between ``---`` lines, then the Markdown body exactly as stored. A page's current
attachments are ``attachments/<slug>/<name>``, as ``attachment:<name>`` in its Markdown
names them. ``python manage.py export_markdown`` writes the tree into a directory and
``GET /api/v1/projects/{slug}/markdown.tar.gz`` sends it as an archive: the same files,
byte for byte. The output is deterministic (a page that did not change exports the same
bytes), so the tree diffs cleanly in git.

The other way, ``read`` parses such a file back, and ``wiki.services.pages.push_tree``
(``POST /api/v1/projects/{slug}/docs/``, the CI client's ``docs-push``) writes the files
of a folder as revisions: pushing an export back changes nothing.
"""

import gzip
import io
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError

from wiki.attachments import open_stored
from wiki.categories import TABLE
from wiki.models import Attachment

FRONT_MATTER = "---\n"
ATTACHMENTS = "attachments"


class _Dumper(yaml.SafeDumper):
    """Multi-line text (Markdown) as YAML literal blocks, so it reads as written."""


# Characters a YAML reader takes for line breaks unless escaped, which only the
# double-quoted style does (plain and block styles would read back changed).
_BREAKS = ("\x85", "\u2028", "\u2029")


def _string(dumper, text):
    style = '"' if any(c in text for c in _BREAKS) else "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def yaml_text(data):
    """``data`` as block-style YAML that reads back exactly (also the model cards' metadata,
    wiki.modelcards), keys in their order."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
        width=100,
    )  # fmt: skip


def page_text(page):
    """The file of ``page``: front matter, then its body."""
    meta = {"page": page.slug, "title": page.title}
    if page.spec is not None:
        fields = page.spec.fields
        meta["fields"] = {f.name: page.fields.get(f.name, _empty(f)) for f in fields}
    return f"{FRONT_MATTER}{yaml_text(meta)}{FRONT_MATTER}{page.body}"


# What front matter may say; anything else is refused rather than dropped unsaid.
FRONT_MATTER_KEYS = ("page", "title", "fields")


@dataclass(frozen=True)
class PageFile:
    """A page as a file of the tree says it: ``fields`` None when the file names none
    (the page keeps its own), ``title`` None likewise."""

    slug: str
    title: str | None
    fields: dict | None
    body: str


def read(text):
    """The PageFile in ``text``, a file as ``page_text`` writes it (and as people edit
    it: CRLF line ends, keys left out); ValidationError saying what is wrong."""
    text = text.replace("\r\n", "\n")
    if not text.startswith(FRONT_MATTER):
        raise ValidationError("Must start with YAML front matter: a '---' line, then page: …")
    header, separator, body = text[len(FRONT_MATTER) :].partition(f"\n{FRONT_MATTER}")
    if not separator:
        if not header.endswith("\n---") and header != "---":
            raise ValidationError("The front matter has no closing '---' line.")
        header, body = header.removesuffix("---"), ""
    try:
        meta = yaml.safe_load(header)
    except yaml.YAMLError as error:
        raise ValidationError(f"The front matter is not valid YAML: {error}") from None
    if not isinstance(meta, dict):
        raise ValidationError("The front matter must be a mapping (page: …, title: …).")
    unknown = sorted(str(key) for key in meta if key not in FRONT_MATTER_KEYS)
    if unknown:
        raise ValidationError(
            f"Unknown front matter keys: {', '.join(unknown)} "
            f"(known: {', '.join(FRONT_MATTER_KEYS)})."
        )
    slug, title, fields = meta.get("page"), meta.get("title"), meta.get("fields")
    if not isinstance(slug, str) or not slug:
        raise ValidationError("The front matter must say which page this is: page: <slug>.")
    if title is not None and not isinstance(title, str):
        raise ValidationError("title must be text.")
    if fields is not None and not isinstance(fields, dict):
        raise ValidationError("fields must be a mapping of field name to value.")
    return PageFile(slug=slug, title=title, fields=fields, body=body)


def _empty(spec):
    return [] if spec.kind == TABLE else ""


def pages(project):
    """The project's pages in a stable order: the categories', then free pages by slug."""
    order = project.spec.order
    return sorted(project.pages.all(), key=lambda p: (order(p.category), p.slug))


def files(project):
    """(relative path, item) of every file of the tree, in order: a page's text as bytes,
    an attachment's SHA-256 (its bytes are read from the storage by ``_content``)."""
    for page in pages(project):
        yield f"{page.slug}.md", page_text(page).encode()
    attachments = Attachment.objects.filter(
        project=project, page__isnull=False, deleted=False
    ).select_related("page")
    for attachment in sorted(attachments, key=lambda a: (a.page.slug, a.name)):
        yield f"{ATTACHMENTS}/{attachment.page.slug}/{attachment.name}", attachment.sha256


class MissingFile(Exception):
    """An attachment's bytes are not in the storage any more (verify_audit tells more)."""


def _content(path, item):
    """The bytes of a file of ``files``: a page's text, or an attachment's stored bytes
    (read from Django's storage by their SHA-256)."""
    if isinstance(item, bytes):
        return io.BytesIO(item), len(item)
    try:
        stored = open_stored(item)
    except FileNotFoundError:
        raise MissingFile(f"The bytes of {path} are missing from the file storage.") from None
    return stored, stored.size


def write(project, directory):
    """Write the tree into ``directory`` (made if missing); returns the paths written."""
    root = Path(directory)
    written = []
    for path, item in files(project):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        source, _ = _content(path, item)
        with source, open(target, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        written.append(path)
    return written


def archive(project):
    """The tree as a gzipped tar archive, in a temporary file (rewound), whatever its size."""
    spooled = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 - returned open
    # Times 0 and no owner: the same tree is the same archive, byte for byte.
    with (
        gzip.GzipFile(fileobj=spooled, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path, item in files(project):
            source, size = _content(path, item)
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = size, 0, 0o644
            with source:
                tar.addfile(info, source)
    spooled.seek(0)
    return spooled
