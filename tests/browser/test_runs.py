"""Training runs in a real browser: tick two on the Records page, compare them, and see what
differs and both learning curves on one chart."""

import pytest
from django.utils import timezone

from tests.browser.support import DEMO, expect, log_in, screenshot
from tests.factories import cli_actor, make_training_run
from wiki.models import Project
from wiki.services import series

pytestmark = pytest.mark.browser


def test_compare_two_runs_shows_the_differing_parameter_and_both_curves(page):
    project = Project.objects.get(slug=DEMO)
    runs = [
        make_training_run(project, "9.0.0", started_at=timezone.now(), metrics={"auc": auc},
                          hyperparameters={"learning_rate": rate, "max_depth": 6})
        for rate, auc in ((0.1, 0.8), (0.03, 0.83))
    ]  # fmt: skip
    for run, scale in zip(runs, (1.0, 0.7), strict=True):
        points = [{"step": step, "value": scale / step} for step in range(1, 40)]
        series.append(run, {"train_loss": points}, actor=cli_actor())
    log_in(page)
    page.goto(f"/projects/{DEMO}/records/")
    for run in runs:
        page.get_by_role("checkbox", name=f"Compare run #{run.pk}").check()
    page.get_by_role("button", name="Compare the ticked runs").click()
    page.wait_for_url(f"**/projects/{DEMO}/runs/compare/**")

    rate = page.locator("tr", has=page.get_by_role("rowheader", name="learning_rate ≠ differs"))
    expect(rate).to_have_class("differs")
    expect(rate).to_contain_text("0.1")
    expect(rate).to_contain_text("0.03")
    depth = page.locator("tr", has=page.get_by_role("rowheader", name="max_depth", exact=True))
    expect(depth).not_to_have_class("differs")

    chart = page.get_by_role("img", name="train_loss")
    expect(chart.locator("path.series")).to_have_count(2)
    for run in runs:
        expect(chart.locator("text", has_text=f"run #{run.pk} (9.0.0)").first).to_be_visible()
    screenshot(page, "runs-compare")

    page.get_by_role("link", name=f"run #{runs[0].pk} (9.0.0)").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"Training run #{runs[0].pk}")
    expect(page.get_by_role("img", name="train_loss").locator("path.series")).to_have_count(1)
    screenshot(page, "run")
