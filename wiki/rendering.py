"""Markdown to safe HTML: python-markdown, wiki links, nh3 sanitizing, cached by content hash.

Wiki links: ``[[page]]`` (a page of the same project, by slug, category name or title
words: ``[[Runbook retraining]]`` is ``runbook-retraining``), ``[[project/page]]`` (another
project's page), each optionally ``#heading`` and ``|with a label``. A link to a page that
does not exist yet points at the form that creates it.

The cache key is a hash of the text, the project it is rendered in and the state of every
page it links to, so creating or renaming a linked page changes the key and a rendering is
never stale; an edit elsewhere never needs to invalidate anything.

Attachments: ``![ROC curve](attachment:roc.png)`` and ``[report](attachment:report.html)``
name a file attached to the page or record the text belongs to. The cached HTML keeps the
``attachment:`` URLs; ``link_attachments`` turns them into real addresses after the cache,
with a resolver the caller chooses (the current version, the version at a revision's date,
or data: URIs in a self-contained export), so the cache key never depends on attachments.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from xml.etree import ElementTree

import markdown
import nh3
from django.conf import settings
from django.db.models import Q
from django.urls import get_script_prefix, reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.text import slugify
from markdown.extensions import Extension
from markdown.extensions.toc import slugify as toc_slugify
from markdown.inlinepatterns import InlineProcessor

from wiki import caching
from wiki.categories import MARKDOWN, RESERVED_SLUGS
from wiki.models import SLUG_PATTERN, Page, Project

logger = logging.getLogger(__name__)

# Change when the same input should render differently (new extension, new allow-list).
RENDERER_VERSION = 3
CACHE_SECONDS = 7 * 24 * 3600
# More distinct link targets than this in one text are shown as unresolved links.
MAX_LINK_TARGETS = 200

WIKILINK_PATTERN = r"\[\[([^\[\]\n]{1,300})\]\]"
_WIKILINK_RE = re.compile(WIKILINK_PATTERN)
_SLUG_RE = re.compile(rf"^{SLUG_PATTERN}$")
PAGE_SLUG_MAX = Page._meta.get_field("slug").max_length
# Heading ids get this prefix, so page content can never take an id the interface uses.
HEADING_ID_PREFIX = "h-"

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "abbr": {"title"},
    "code": {"class"},
    "div": {"class"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "span": {"class", "title"},
    "td": {"align"},
    "th": {"align"},
    **{f"h{level}": {"id"} for level in range(1, 7)},
}
# Classes the renderer itself emits; anything else a writer puts in raw HTML is dropped,
# so page content cannot dress itself up as the wiki's own interface.
ALLOWED_CLASSES = {"toc", "wikilink", "missing"}
# ``attachment:<name>`` in a link or image: a file of the text's page or record.
ATTACHMENT_SCHEME = "attachment"
_LANGUAGE_CLASS_RE = re.compile(r"^language-[A-Za-z0-9_+#.-]{1,40}$")


def _filter_attribute(tag, attribute, value):
    if attribute == "id":
        return value if value.startswith(HEADING_ID_PREFIX) else None
    if attribute != "class":
        return value
    if tag == "code":
        return value if _LANGUAGE_CLASS_RE.match(value) else None
    kept = [name for name in value.split() if name in ALLOWED_CLASSES]
    return " ".join(kept) or None


def _heading_id(value, separator):
    return HEADING_ID_PREFIX + toc_slugify(value, separator)


def to_slug(text):
    """The page or project slug that ``text`` names ("Runbook retraining" -> runbook-retraining)."""
    slug = re.sub(r"[-_]+", "-", slugify(text)).strip("-")
    return slug if _SLUG_RE.match(slug) else ""


@dataclass(frozen=True)
class WikiLink:
    project: str
    page: str
    anchor: str
    label: str


def parse_wikilink(text, project_slug):
    """The WikiLink written as ``[[text]]`` in ``project_slug``, or None if it is not one."""
    target, _, label = text.partition("|")
    target, _, anchor = target.partition("#")
    parts = target.split("/")
    if len(parts) > 2:
        return None
    slugs = [to_slug(part) for part in parts]
    if not all(slugs):
        return None
    project = slugs[0] if len(slugs) == 2 else project_slug
    if project is None:
        return None
    anchor = _heading_id(anchor, "-") if to_slug(anchor) else ""
    return WikiLink(project, slugs[-1], anchor, label.strip())


def _targets(text, project_slug):
    links = (parse_wikilink(inner, project_slug) for inner in _WIKILINK_RE.findall(text))
    return sorted({(link.project, link.page) for link in links if link})[:MAX_LINK_TARGETS]


def _resolve(targets):
    """({(project, page): title} of the targets that exist, {projects that exist})."""
    if not targets:
        return {}, set()
    condition = Q()
    for project, slug in targets:
        condition |= Q(project__slug=project, slug=slug)
    pages = {
        (project, slug): title
        for project, slug, title in Page.objects.filter(condition).values_list(
            "project__slug", "slug", "title"
        )
    }
    wanted = {project for project, _ in targets}
    projects = set(Project.objects.filter(slug__in=wanted).values_list("slug", flat=True))
    return pages, projects


class _WikiLinkProcessor(InlineProcessor):
    def __init__(self, project_slug, pages, projects):
        super().__init__(WIKILINK_PATTERN)
        self.project_slug = project_slug
        self.pages = pages
        self.projects = projects

    def handleMatch(self, m, data):
        link = parse_wikilink(m.group(1), self.project_slug)
        if link is None:
            return None, None, None  # not a link: the text stays as written
        title = self.pages.get((link.project, link.page))
        creatable = link.page not in RESERVED_SLUGS and len(link.page) <= PAGE_SLUG_MAX
        if title is not None:
            element = ElementTree.Element("a", {"class": "wikilink"})
            url = reverse("frontend:page", args=[link.project, link.page])
            element.set("href", f"{url}#{link.anchor}" if link.anchor else url)
            element.text = link.label or title
        elif link.project in self.projects and creatable:
            element = ElementTree.Element("a", {"class": "wikilink missing"})
            url = reverse("frontend:page-create", args=[link.project])
            element.set("href", f"{url}?{urlencode({'slug': link.page})}")
            element.set("title", "This page does not exist yet: create it")
            element.text = link.label or link.page
        else:
            element = ElementTree.Element("span", {"class": "wikilink missing"})
            reason = "page" if link.project in self.projects else "project"
            element.set("title", f"There is no such {reason}")
            element.text = link.label or f"{link.project}/{link.page}"
        return element, m.start(0), m.end(0)


class _WikiLinkExtension(Extension):
    def __init__(self, processor):
        super().__init__()
        self.processor = processor

    def extendMarkdown(self, md):
        # Above "link" (160) so "[[x]]" is not read as a reference link.
        md.inlinePatterns.register(self.processor, "wikilink", 175)


def _to_html(text, project_slug, pages, projects):
    md = markdown.Markdown(
        extensions=[
            "tables",
            "fenced_code",
            "toc",
            "sane_lists",
            _WikiLinkExtension(_WikiLinkProcessor(project_slug, pages, projects)),
        ],
        extension_configs={
            "tables": {"use_align_attribute": True},
            "toc": {"slugify": _heading_id},
        },
        output_format="html",
    )
    try:
        html = md.convert(text)
    except RecursionError:
        # Pathologically nested input (thousands of levels); show it as written.
        return (
            '<p class="missing">This text is nested too deeply to be shown as Markdown; '
            f"here it is as written.</p><pre>{escape(text)}</pre>"
        )
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto", ATTACHMENT_SCHEME},
        link_rel="noopener noreferrer",
    )


def site_link(name, *args):
    """The full address (SITE_URL and path) of the wiki's URL ``name``, for what is read
    away from the wiki: notifications, audit reports."""
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def _cache_key(text, project_slug, targets, pages, projects):
    state = [[target, pages.get(target), target[0] in projects] for target in targets]
    material = json.dumps(
        [RENDERER_VERSION, get_script_prefix(), project_slug, text, state], ensure_ascii=False
    )
    return "md:" + hashlib.sha256(material.encode()).hexdigest()


def render_markdown_many(texts, project_slug=None, resolve=None):
    """Sanitized HTML of each of ``texts``, wiki links resolved within ``project_slug``
    and, with ``resolve``, attachments by link_attachments (after the cache).

    All links of all texts are looked up together (two queries at most), and the cache
    is read and written in one round trip each.
    """
    targets = [_targets(text, project_slug) if text else [] for text in texts]
    pages, projects = _resolve(sorted({target for own in targets for target in own}))
    keys = {
        i: _cache_key(text, project_slug, targets[i], pages, projects)
        for i, text in enumerate(texts)
        if text
    }
    html = caching.call("get_many", list(keys.values()))
    fresh = {
        key: _to_html(texts[i], project_slug, pages, projects)
        for i, key in keys.items()
        if key not in html
    }
    if fresh:
        caching.call("set_many", fresh, CACHE_SECONDS)
    html |= fresh
    # Sanitized by nh3 in _to_html (or escaped there).
    rendered = [mark_safe(html[keys[i]] if i in keys else "") for i in range(len(texts))]  # noqa: S308
    if resolve is not None:
        rendered = [link_attachments(one, resolve) for one in rendered]
    return rendered


def render_markdown(text, project_slug=None, resolve=None):
    """Sanitized HTML of ``text``, with wiki links resolved relative to ``project_slug``
    and, with ``resolve``, attachments (link_attachments)."""
    return render_markdown_many([text], project_slug, resolve)[0]


class _AttachmentLinker(HTMLParser):
    """Sanitized HTML again, with its ``attachment:`` URLs resolved (see link_attachments).

    Everything else is copied as it came: the input is HTML nh3 made (the exports pass it
    on with its links made absolute), so well formed."""

    def __init__(self, resolve):
        super().__init__(convert_charrefs=False)
        self.resolve, self.resolved, self.out = resolve, {}, []
        # Open <a> elements: False for one turned into a missing marker (its end is a </span>).
        self.links = []

    def url(self, value):
        """The URL an ``attachment:`` value resolves to (None if unknown); any other
        value as it is."""
        if not value or not value.startswith(f"{ATTACHMENT_SCHEME}:"):
            return value
        name = value[len(ATTACHMENT_SCHEME) + 1 :]
        if name not in self.resolved:
            self.resolved[name] = self.resolve(name) if name else None
        return self.resolved[name]

    def handle_starttag(self, tag, attrs):
        self._start(tag, attrs, self.get_starttag_text())

    def handle_startendtag(self, tag, attrs):
        self._start(tag, attrs, self.get_starttag_text())

    def _start(self, tag, attrs, text):
        values = dict(attrs)
        if tag == "a":
            href = values.get("href")
            url = self.url(href)
            self.links.append(url is not None or href is None)
            if url is None and href is not None:
                self.out.append(_missing_start(href))
            elif url != href:
                self.out.append(_tag("a", attrs, href=url))
            else:
                self.out.append(text)
        elif tag == "img" and (values.get("src") or "").startswith(f"{ATTACHMENT_SCHEME}:"):
            url = self.url(values["src"])
            if url is None:
                name = values["src"][len(ATTACHMENT_SCHEME) + 1 :]
                self.out.append(
                    f"{_missing_start(values['src'])}missing attachment: {escape(name)}</span>"
                )
            elif self.links or url.startswith("data:"):
                # Already in a link (the writer's); a data: URI opens nowhere on a click.
                self.out.append(_tag("img", attrs, src=url))
            else:
                self.out.append(
                    f'<a class="attachment-image" href="{escape(url)}">'
                    f"{_tag('img', attrs, src=url)}</a>"
                )
        else:
            self.out.append(text)

    def handle_endtag(self, tag):
        if tag == "a" and self.links and not self.links.pop():
            self.out.append("</span>")
        else:
            self.out.append(f"</{tag}>")

    def handle_data(self, data):
        self.out.append(data)

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")

    def handle_comment(self, data):
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl):
        self.out.append(f"<!{decl}>")


def _tag(name, attrs, **replaced):
    parts = [name]
    for key, value in attrs:
        value = replaced.get(key, value)
        parts.append(key if value is None else f'{key}="{escape(value)}"')
    return f"<{' '.join(parts)}>"


def _missing_start(value):
    name = value[len(ATTACHMENT_SCHEME) + 1 :]
    return f'<span class="attachment-missing" title="There is no attachment named {escape(name)}">'


def link_attachments(html, resolve):
    """``html`` (rendered by this module) with each ``attachment:<name>`` URL replaced by
    ``resolve(name)`` (asked once per name): a link's href, and an image's src, the image
    wrapped in a link to the same URL so a click opens it full size (not when it is in a
    link already, nor for a data: URI). A name ``resolve`` answers None for becomes a
    visible "missing attachment" marker, never a request for an address that fails."""
    if f"{ATTACHMENT_SCHEME}:" not in html:
        return html
    parser = _AttachmentLinker(resolve)
    parser.feed(str(html))
    parser.close()
    # Its parts are sanitized HTML copied as they came, or built here with escaped values.
    return mark_safe("".join(parser.out))  # noqa: S308


def _markdown_texts(spec, fields, body):
    """The Markdown fields of a page that have a value (registry order), and the texts
    to render: theirs, then the body."""
    markdown_fields = [f for f in (spec.fields_for(fields) if spec else []) if f.kind == MARKDOWN]
    markdown_fields = [f for f in markdown_fields if fields.get(f.name)]
    return markdown_fields, [fields[f.name] for f in markdown_fields] + [body]


def _page_rows(spec, fields, markdown_fields, rendered):
    by_name = dict(zip((f.name for f in markdown_fields), rendered, strict=False))
    shown = spec.fields_for(fields) if spec else []
    rows = [(f, fields.get(f.name), by_name.get(f.name)) for f in shown]
    return rows, rendered[-1]


def render_page(spec, fields, body, project_slug, resolve=None):
    """A page's fields and body for display, every Markdown text rendered in one pass
    (``attachment:`` URLs by ``resolve``, see link_attachments).

    Returns ([(field, value, html or None), ...] in registry order, body html); ``spec``
    is the page's category (None for free pages).
    """
    markdown_fields, texts = _markdown_texts(spec, fields, body)
    rendered = render_markdown_many(texts, project_slug, resolve)
    return _page_rows(spec, fields, markdown_fields, rendered)


def _revision_key(project, revision, texts):
    """The key of a saved revision's rendering: its history row (a revision never
    changes), the renderer, and the state of every page its wiki links could name: the
    pages version of its project and of each other project it links to (one query, only
    for a text that links to another project), so creating, renaming or retitling a
    linked page is a new key. Projects' slugs never change."""
    targets = {target for text in texts if text for target in _targets(text, project.slug)}
    others = sorted({slug for slug, _ in targets if slug != project.slug})
    versions = {}
    if others:
        versions = dict(
            Project.objects.filter(slug__in=others).values_list("slug", "pages_version")
        )
    material = json.dumps(
        [RENDERER_VERSION, get_script_prefix(), project.slug, project.pages_version,
         [[slug, versions.get(slug)] for slug in others]],
    )  # fmt: skip
    return ":".join([
        "mdrev", f"{project.pk}.{caching.stamp(project.created_at)}",
        f"{revision.history_id}.{caching.stamp(revision.history_date)}",
        hashlib.sha256(material.encode()).hexdigest()[:32],
    ])  # fmt: skip


def render_revision(spec, fields, body, project, revision, resolve=None):
    """render_page for a saved revision of a page of ``project`` (its ``fields`` and
    ``body``; ``revision`` is the history row that made it): the rendering is cached by
    the revision (see _revision_key), so a page read again costs no query for its wiki
    links. Attachments are resolved after the cache, as in render_page."""
    markdown_fields, texts = _markdown_texts(spec, fields, body)
    key = _revision_key(project, revision, texts)
    html = caching.call("get_many", [key]).get(key)
    if not isinstance(html, list) or len(html) != len(texts):
        html = [str(one) for one in render_markdown_many(texts, project.slug)]
        caching.call("set_many", {key: html}, CACHE_SECONDS)
    # Rendered by render_markdown_many, sanitized there.
    rendered = [mark_safe(one) for one in html]  # noqa: S308
    if resolve is not None:
        rendered = [link_attachments(one, resolve) for one in rendered]
    return _page_rows(spec, fields, markdown_fields, rendered)


class _WikiLinkLabel(InlineProcessor):
    """A wiki link as the words a reader sees: its label, else the target as written."""

    def __init__(self):
        super().__init__(WIKILINK_PATTERN)

    def handleMatch(self, m, data):
        if parse_wikilink(m.group(1), "") is None:
            return None, None, None  # not a link: the text stays as written
        target, _, label = m.group(1).partition("|")
        return (label.strip() or target.strip()), m.start(0), m.end(0)


# Elements whose end separates words: a paragraph, an item, a table cell.
_BREAKS = {
    "p", "div", "li", "dt", "dd", "tr", "td", "th", "br", "hr", "pre", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
}  # fmt: skip


class _Text(HTMLParser):
    """The text of HTML: tags dropped (with what scripts and styles hold), blocks apart."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden += 1
        elif tag in ("br", "hr"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def plain_text(text):
    """Markdown as the plain words a reader sees, for search and its snippets: no table
    rules, emphasis marks or link syntax; ``[[page|label]]`` is its label. Resolves
    nothing in the database, so a reindex of every page asks nothing per page."""
    if not text:
        return ""
    md = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists"])
    md.inlinePatterns.register(_WikiLinkLabel(), "wikilink", 175)
    try:
        html = md.convert(text)
    except RecursionError:
        return text
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


_WIKILINK_HREF_RE = re.compile(r'(<a class="wikilink" href="/[^"#?]*)')


def keep_moment(html, project_slug, same, other):
    """``html`` (rendered here) with its wiki links carrying a moment, so that reading
    the documentation as it stood then stays then: ``same`` (a query string, ?as_of=…) is
    added to links to ``project_slug``'s pages, ``other`` to other projects' (a record
    of this project names no moment there)."""
    prefix = reverse("frontend:project-detail", args=[project_slug])

    def add(match):
        link = match.group(1)
        query = same if link.split('href="', 1)[1].startswith(prefix) else other
        return link + escape(query)

    return mark_safe(_WIKILINK_HREF_RE.sub(add, str(html)))  # noqa: S308 - our own, sanitized HTML
