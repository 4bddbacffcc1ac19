"""What the browser tests share besides fixtures: where things are, logging in,
screenshots and the accessibility check."""

from pathlib import Path

from tests.factories import PASSWORD

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the browser fixture skips (or fails) every test, saying why
    expect = sync_playwright = None

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Headless, and nothing that reaches out of the machine (updates, sync, field trials).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 375, "height": 800}
DEMO = "churn-prediction"


def log_in(page, username="demo"):
    """Log in through the login form, as ``username`` of the demo; ends on the dashboard."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("/")


def screenshot(page, name):
    """Save the whole page as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def serious_violations(page, axe_source):
    """What axe-core finds on ``page`` with impact serious or critical, one line each."""
    page.add_script_tag(path=axe_source)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
