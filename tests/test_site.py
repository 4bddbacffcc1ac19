"""What every screen shares: the wiki's icon, and the way back from the API docs."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db
ICON = "/static/frontend/favicon.svg"


def test_every_page_names_the_wiki_s_icon_and_the_file_is_an_svg(client, client_logged_in):
    for html in (client.get("/accounts/login/"), client_logged_in.get("/")):
        assert f'<link rel="icon" href="{ICON}" type="image/svg+xml">' in html.content.decode()
    icon = finders.find(ICON.removeprefix("/static/"))
    assert icon and Path(icon).read_text().startswith('<svg xmlns="http://www.w3.org/2000/svg"')


def test_favicon_ico_leads_to_the_icon_without_logging_in(client):
    # Browsers ask for it on pages that name no icon (the admin, JSON answers).
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (302, ICON)


def test_the_api_docs_lead_back_to_the_wiki_and_show_its_icon(client_logged_in):
    html = client_logged_in.get("/api/docs/").content.decode()
    assert re.search(r'<a href="/">Back to the wiki</a>', html)
    assert f'<link rel="icon" href="{ICON}">' in html
    assert "swagger-ui-bundle.js" in html  # still Swagger UI's page
