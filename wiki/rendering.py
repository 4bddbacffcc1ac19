"""Markdown to safe HTML: python-markdown, wiki links, nh3 sanitizing, cached by content hash.

Wiki links: ``[[page]]`` (a page of the same project, by slug or category name),
``[[project/page]]`` (another project's page), each optionally ``|with a label``. A link
to a page that does not exist yet points at the form that creates it.

The cache key is a hash of the text, the project it is rendered in and the state of
every page it links to, so creating or renaming a linked page changes the key and the
rendering is never stale; an edit elsewhere never needs to invalidate anything.
"""

import hashlib
import json
import re
from xml.etree import ElementTree

import markdown
import nh3
from django.core.cache import cache
from django.db.models import Q
from django.urls import get_script_prefix, reverse
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor

from wiki.models import SLUG_PATTERN, Page, Project

# Change when the same input should render differently (new extension, new allow-list).
RENDERER_VERSION = 1
CACHE_SECONDS = 7 * 24 * 3600
# More distinct link targets than this in one text are shown as unresolved links.
MAX_LINK_TARGETS = 200

WIKILINK_PATTERN = r"\[\[([^\[\]\n]{1,300})\]\]"
_WIKILINK_RE = re.compile(WIKILINK_PATTERN)
_TARGET_RE = re.compile(rf"^(?:({SLUG_PATTERN})/)?({SLUG_PATTERN})$")

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
_LANGUAGE_CLASS_RE = re.compile(r"^language-[A-Za-z0-9_+#.-]{1,40}$")


def _filter_attribute(tag, attribute, value):
    if attribute != "class":
        return value
    if tag == "code":
        return value if _LANGUAGE_CLASS_RE.match(value) else None
    kept = [name for name in value.split() if name in ALLOWED_CLASSES]
    return " ".join(kept) or None


def parse_wikilink(text, project_slug):
    """(project slug, page slug, label or "") of a wiki link's inner text, or None."""
    target, _, label = text.partition("|")
    match = _TARGET_RE.match(target.strip().lower())
    if not match:
        return None
    project = match.group(1) or project_slug
    if project is None:
        return None
    return project, match.group(2), label.strip()


def _resolve_links(text, project_slug):
    """Look up every wiki link target of ``text``: ({(project, page): title}, {projects})."""
    targets = set()
    for inner in _WIKILINK_RE.findall(text):
        parsed = parse_wikilink(inner, project_slug)
        if parsed:
            targets.add(parsed[:2])
    targets = sorted(targets)[:MAX_LINK_TARGETS]
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
    projects = set(
        Project.objects.filter(slug__in={project for project, _ in targets}).values_list(
            "slug", flat=True
        )
    )
    return pages, projects


class _WikiLinkProcessor(InlineProcessor):
    def __init__(self, project_slug, pages, projects):
        super().__init__(WIKILINK_PATTERN)
        self.project_slug = project_slug
        self.pages = pages
        self.projects = projects

    def handleMatch(self, m, data):
        parsed = parse_wikilink(m.group(1), self.project_slug)
        if parsed is None:
            return None, None, None  # not a link: the text stays as written
        project, slug, label = parsed
        title = self.pages.get((project, slug))
        if title is not None:
            element = ElementTree.Element("a", {"class": "wikilink"})
            element.set("href", reverse("frontend:page", args=[project, slug]))
            element.text = label or title
        elif project in self.projects:
            element = ElementTree.Element("a", {"class": "wikilink missing"})
            url = reverse("frontend:page-create", args=[project])
            element.set("href", f"{url}?{urlencode({'slug': slug})}")
            element.set("title", "This page does not exist yet: create it")
            element.text = label or slug
        else:
            element = ElementTree.Element("span", {"class": "wikilink missing"})
            element.set("title", f"There is no project '{project}'")
            element.text = label or f"{project}/{slug}"
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
        extension_configs={"tables": {"use_align_attribute": True}},
        output_format="html",
    )
    return nh3.clean(
        md.convert(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def render_markdown(text, project_slug=None):
    """Sanitized HTML of ``text``, with wiki links resolved relative to ``project_slug``."""
    if not text:
        return mark_safe("")
    pages, projects = _resolve_links(text, project_slug)
    key_material = json.dumps(
        [RENDERER_VERSION, get_script_prefix(), project_slug, text, sorted(pages.items()),
         sorted(projects)],
        ensure_ascii=False,
    )  # fmt: skip
    key = "md:" + hashlib.sha256(key_material.encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        html = _to_html(text, project_slug, pages, projects)
        cache.set(key, html, CACHE_SECONDS)
    return mark_safe(html)  # noqa: S308  (sanitized by nh3 in _to_html)
