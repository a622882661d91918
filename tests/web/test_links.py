"""links.py through the pages: where an action sends the browser back to, which "page where it
was run" a job page links to, and what "Restarted as" tells someone who may not open the restart."""

from __future__ import annotations

import html
from urllib.parse import urljoin, urlsplit

import pytest

from flask_jobmonitor import same_site_path

from ..support.rows import add_job
from ..support.users import csrf_token

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


def test_a_restart_the_viewer_may_not_open_is_not_named_on_the_page_the_json_or_the_log(app, engine, client_for):
    """The admin submits the clerk's failed job again: the new job is the admin's."""
    job_id = add_job(engine, owner="clerk_a", status="failed", name="Import rows.csv")
    admin = client_for("admin")
    answer = admin.post(f"/jobmonitor/api/jobs/{job_id}/restart", headers={"X-CSRFToken": csrf_token(admin)})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    new_id = answer.get_json()["new_job_id"]
    assert new_id and new_id in admin.get(f"/admin/jobs/{job_id}/").get_data(as_text=True)

    clerk = client_for("clerk_a")
    page = clerk.get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    assert "<th>Restarted as</th>" in page and "a job you may not open" in page
    assert new_id[:8] not in page
    restarted_as = page.split("<th>Restarted as</th>", 1)[1].split("</tr>", 1)[0]
    assert 'data-jm="status"' not in restarted_as  # no status of it, live or not
    assert new_id[:8] not in clerk.get(f"/jobmonitor/api/jobs/{job_id}").get_data(as_text=True)
    assert clerk.get(f"/admin/jobs/{new_id}/").status_code == 404
