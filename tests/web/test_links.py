"""links.py through the pages: where an action sends the browser back to, and which "page where
it was run" a job page links to."""

from __future__ import annotations

import html
from urllib.parse import urljoin, urlsplit

import pytest

from flask_jobmonitor import same_site_path

from .conftest import add_job, csrf_token

OFF_SITE = [
    "//evil.example/",
    "/\t/evil.example/",
    "/\r\n/evil.example/",
    "/%09/evil.example/",
    "/%2F/evil.example/",
    "/%2f%2fevil.example/",
    "/%5Cevil.example/",
    "/\\evil.example/",
    "/\uff0fevil.example/",
    "/\u200b/evil.example/",
    "https://evil.example/",
    "HTTPS:evil.example",
    "javascript:alert(1)//",
    " /admin/jobs/",
]


def browser_target(location: str, request_url: str) -> tuple[str, str]:
    """Where a browser goes for ``location``: it drops tabs and line breaks, reads ``\\`` as ``/``."""
    cleaned = location.strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f")
    cleaned = cleaned.replace("\t", "").replace("\r", "").replace("\n", "").replace("\\", "/")
    parts = urlsplit(urljoin(request_url, cleaned))
    return parts.scheme, parts.netloc


@pytest.mark.parametrize("value", OFF_SITE, ids=repr)
def test_same_site_path_refuses_every_way_off_the_site(value):
    assert same_site_path(value, "/default") == "/default"


@pytest.mark.parametrize(
    "value", ["/admin/jobs/?status=failed&q=a%20b", "/admin/jobs/?next=//x", "/caf\u00e9/", "/a b/"], ids=repr
)
def test_same_site_path_keeps_paths_of_this_site(value):
    assert same_site_path(value, "/default") == value


@pytest.mark.parametrize("value", OFF_SITE, ids=repr)
def test_an_action_and_a_bulk_action_never_send_the_browser_off_the_site(engine, client_for, value):
    job_id = add_job(engine, owner="clerk_a", status="completed")
    client = client_for("clerk_a")
    token = csrf_token(client)
    for url, data in [
        (f"/admin/jobs/{job_id}/action", {"action": "stop"}),  # refused: completed, back to the page
        ("/admin/jobs/bulk", {"action": "stop", "ids": job_id}),
    ]:
        response = client.post(url, data={**data, "next": value, "csrf_token": token})
        assert response.status_code == 302, url
        assert browser_target(response.headers["Location"], f"http://localhost{url}") == ("http", "localhost")


def test_a_delete_does_not_send_back_to_the_deleted_jobs_page(engine, client_for):
    job_id = add_job(engine, owner="clerk_a", status="completed")
    client = client_for("admin")
    response = client.post(
        f"/admin/jobs/{job_id}/action",
        data={"action": "delete", "next": f"/admin/jobs/{job_id}/", "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/jobs/"


@pytest.mark.parametrize(
    "stored",
    ["javascript:alert(1)//", "JAVASCRIPT:alert(1)", "https://evil.example/phish", "//evil.example/", "/\\evil"],
)
def test_a_job_page_does_not_link_an_unsafe_page_where_it_was_run(engine, client_for, stored):
    """Rows written before links were checked: the page shows no link rather than this one."""
    job_id = add_job(engine, owner="clerk_a", status="completed", run_at_url=stored)
    body = html.unescape(client_for("clerk_a").get(f"/admin/jobs/{job_id}/").get_data(as_text=True))
    assert "page where it was run" not in body
    assert stored not in body


def test_a_job_page_links_the_page_where_it_was_run_on_this_site(engine, client_for):
    job_id = add_job(engine, owner="clerk_a", status="completed", run_at_url="/catalogue/import?profile=3")
    body = client_for("clerk_a").get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    assert '<a href="/catalogue/import?profile=3" rel="noopener">page where it was run</a>' in body
