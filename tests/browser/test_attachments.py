"""Attachments in a real browser: an image pasted into the editor is on the page and opens
full size; files dropped on the panel are attached; an SVG and an HTML report with
scripts, opened every way a reader can, run nothing in the reader's session."""

import base64
import io
import re

import pytest
from PIL import Image

from tests.browser.support import DEMO, expect, log_in, screenshot

pytestmark = pytest.mark.browser

PAGE = f"/projects/{DEMO}/model/"
FILES = f"{PAGE}attachments/"


def png(colour):
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


# What a hostile file would do with the reader's session if it ran: each leaves a trace
# the test looks for (a request to /watch/..., a cookie, a storage key, a changed text).
ATTACK = (
    "fetch('/watch/fetch?'+document.cookie);"
    "new Image().src='/watch/image';"
    "document.cookie='pwned=1; path=/';"
    "localStorage.setItem('pwned','1');"
    "if(window.opener)window.opener.location='/watch/opener';"
    "document.title='SCRIPT RAN';"
    "top.location='/watch/top';"
)
SVG = f"""<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" onload="{ATTACK}">
<script>{ATTACK}</script><rect width="120" height="40" fill="#36c"/>
<text x="8" y="25">diagram</text></svg>"""
REPORT = f"""<!doctype html><html><head><title>Evaluation report</title>
<script>{ATTACK}</script></head><body onload="{ATTACK}">
<h1>Evaluation report</h1><p>AUC 0.91</p>
<img src="x" onerror="{ATTACK}"><svg onload="{ATTACK}"></svg>
<form action="/watch/form" method="post"><button id="go">Go</button></form>
</body></html>"""

# Puts files into a DataTransfer and dispatches `type` events carrying it on `selector`:
# what the browser does when a person pastes an image or drops files.
DISPATCH = """([selector, files, types]) => {
    const data = new DataTransfer();
    for (const {name, type, base64} of files) {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        data.items.add(new File([bytes], name, {type}));
    }
    const target = document.querySelector(selector);
    target.focus?.();
    for (const type of types) {
        const init = {bubbles: true, cancelable: true};
        const event = type === "paste"
            ? new ClipboardEvent(type, {...init, clipboardData: data})
            : new DragEvent(type, {...init, dataTransfer: data});
        target.dispatchEvent(event);
    }
}"""


def text_file(name, type_, text):
    return {"name": name, "type": type_, "base64": base64.b64encode(text.encode()).decode()}


def test_an_image_pasted_into_the_editor_is_on_the_page_and_opens_full_size(page):
    log_in(page)
    page.goto(f"{PAGE}edit/")
    body = page.get_by_label("Body", exact=True)
    body.fill("The ROC curve:\n\n")
    body.press("End")
    pasted = [{"name": "image.png", "type": "image/png", "base64": png((200, 30, 30))}]
    page.evaluate(DISPATCH, ["#id_body", pasted, ["paste"]])
    expect(body).to_have_value(
        re.compile(r"The ROC curve:\n\n!\[pasted-\w+\.png\]\(attachment:pasted-\w+\.png\)$")
    )
    name = re.search(r"attachment:(pasted-\w+\.png)", body.input_value()).group(1)
    preview = page.locator("[data-live-preview]")
    expect(preview.locator(f'img[src="{FILES}{name}"]')).to_be_visible()
    # The panel beside the editor lists it too, without a reload.
    expect(
        page.locator("section[data-attachments]").get_by_role("link", name=name, exact=True)
    ).to_be_visible()
    screenshot(page, "attachment-pasted")

    page.get_by_label("Change reason").fill("The ROC curve")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(PAGE)
    image = page.locator(".markdown.body").get_by_role("img", name=name)
    expect(image).to_be_visible()
    expect(image).to_have_js_property("naturalWidth", 64)  # loaded
    screenshot(page, "attachment-on-page")
    with page.expect_response(f"**{FILES}{name}") as opened:
        image.click()
    page.wait_for_url(f"{FILES}{name}")
    assert opened.value.headers["content-type"] == "image/png"


def test_files_dropped_on_the_panel_are_attached(page):
    log_in(page)
    page.goto(PAGE)
    panel = page.locator("section[data-attachments]")
    expect(panel.get_by_text("or drop files here")).to_be_visible()
    dropped = [
        {"name": "confusion matrix.png", "type": "image/png", "base64": png((30, 200, 30))},
        text_file("split.csv", "text/csv", "set,rows\ntrain,8000\ntest,2000\n"),
        text_file("weights.zip", "application/zip", "PK\x03\x04 not accepted"),
    ]
    page.evaluate(
        DISPATCH, ["section[data-attachments]", dropped, ["dragenter", "dragover", "drop"]]
    )
    panel = page.locator("section[data-attachments]")  # replaced by the server's new one
    expect(panel.get_by_role("link", name="confusion-matrix.png", exact=True)).to_be_visible()
    expect(panel.get_by_role("link", name="split.csv", exact=True)).to_be_visible()
    expect(panel.get_by_role("status")).to_contain_text("weights.zip was not attached")
    thumbnail = panel.get_by_role("row").filter(has_text="confusion-matrix.png").locator("img")
    thumbnail.scroll_into_view_if_needed()  # it loads lazily
    expect(thumbnail).to_have_js_property("naturalWidth", 64)
    screenshot(page, "attachments-dropped")

    # Deleting asks first (a second button), then the file leaves the list.
    row = panel.get_by_role("row").filter(has_text="split.csv")
    row.locator("summary").click()
    row.get_by_role("button", name="Delete split.csv").click()
    expect(page.locator(".messages, [role=status]").first).to_contain_text("Deleted split.csv")
    expect(
        page.locator("section[data-attachments]").get_by_role("link", name="split.csv", exact=True)
    ).to_have_count(0)


def test_scripts_in_an_attached_svg_or_html_report_never_run(page):
    watched, dialogs = [], []
    page.on("request", lambda request: "/watch/" in request.url and watched.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page)
    page.goto(PAGE)
    cookies_before = page.evaluate("document.cookie")
    page.locator("#attachment-file").set_input_files(
        [
            {"name": "diagram.svg", "mimeType": "image/svg+xml", "buffer": SVG.encode()},
            {"name": "report.html", "mimeType": "text/html", "buffer": REPORT.encode()},
        ]
    )
    page.get_by_role("button", name="Upload").click()
    panel = page.locator("section[data-attachments]")
    expect(panel.get_by_role("link", name="report.html", exact=True)).to_be_visible()

    # Both in the page's Markdown: the SVG as an image, the report as a link.
    page.goto(f"{PAGE}edit/")
    page.get_by_label("Body", exact=True).fill(
        "![diagram](attachment:diagram.svg)\n\n[the report](attachment:report.html)"
    )
    expect(page.locator("[data-live-preview] img")).to_be_visible()
    page.get_by_label("Change reason").fill("Figures")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url(PAGE)
    diagram = page.locator(".markdown.body").get_by_role("img", name="diagram")
    expect(diagram).to_be_visible()
    expect(diagram).to_have_js_property("naturalWidth", 120)
    expect(page).not_to_have_title("SCRIPT RAN")

    # The report in the sandboxed frame of its page.
    page.locator("section[data-attachments]").get_by_role(
        "link", name="Details of report.html"
    ).click()
    frame = page.frame_locator("iframe[sandbox]")
    expect(frame.get_by_role("heading", name="Evaluation report")).to_be_visible()
    frame.locator("#go").click()  # forms are off in the sandbox too
    expect(page).not_to_have_title("SCRIPT RAN")
    screenshot(page, "attachment-report-framed")

    # Each opened directly, as a link from the page does.
    page.goto(PAGE)
    page.locator(".markdown.body").get_by_role("link", name="the report", exact=True).click()
    page.wait_for_url(f"{FILES}report.html")
    expect(page.get_by_role("heading", name="Evaluation report")).to_be_visible()
    expect(page).to_have_title("Evaluation report")
    page.goto(f"{FILES}diagram.svg")
    expect(page.get_by_text("diagram")).to_be_visible()

    page.goto(PAGE)
    assert page.evaluate("document.cookie") == cookies_before
    assert "pwned" not in {cookie["name"] for cookie in page.context.cookies()}
    assert page.evaluate("localStorage.getItem('pwned')") is None
    expect(page).not_to_have_title("SCRIPT RAN")
    assert watched == [] and dialogs == []
