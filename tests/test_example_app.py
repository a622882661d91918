"""The example app's own security: the key that signs its session and where its login sends the
browser afterwards (the package's ``same_site_path``)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from .support.databases import dispose_engines
from .support.examples import build_catalogue


@pytest.fixture
def make_catalogue(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Flask]]:
    """``make_catalogue(instance_path=..., **config)``: the example app on a SQLite file of its
    own, seeded (demo users log in with their user name as password)."""
    monkeypatch.delenv("EXAMPLE_SECRET_KEY", raising=False)
    built: list[Flask] = []

    def build(instance_path: Path | None = None, seed: bool = True, **config: Any) -> Flask:
        app = build_catalogue(
            f"sqlite:///{tmp_path / 'catalogue.db'}",
            redis_url,
            tmp_path / "files",
            init_db=seed,
            seed=seed,
            instance_path=instance_path or tmp_path / "instance",
            **config,
        )
        built.append(app)
        return app

    yield build
    for app in built:
        dispose_engines(app)


def _admin_id(app: Flask) -> int:
    from example_app.auth import User
    from example_app.extensions import db

    with app.app_context():
        return int(db.session.execute(db.select(User.id).filter_by(username="admin")).scalar_one())


def _session_cookie(secret_key: str, data: dict[str, Any]) -> str:
    signer = Flask("forger")
    signer.secret_key = secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    assert serializer is not None
    return str(serializer.dumps(data))


def test_a_session_cookie_signed_with_the_old_built_in_key_is_refused(make_catalogue):
    app = make_catalogue()
    client = app.test_client()
    client.set_cookie("session", _session_cookie("demo-only-secret", {"_user_id": str(_admin_id(app))}))

    response = client.get("/admin/jobs/")

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


def test_without_example_secret_key_a_random_key_is_made_once_kept_0600_and_warned_about(
    make_catalogue, tmp_path, caplog
):
    instance = tmp_path / "shared-instance"
    with caplog.at_level(logging.WARNING, logger="example_app"):
        first = make_catalogue(instance_path=instance, seed=False)
    second = make_catalogue(instance_path=instance, seed=False)

    key_file = instance / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert first.secret_key == second.secret_key == key_file.read_text().strip()
    assert len(str(first.secret_key)) >= 32
    assert "EXAMPLE_SECRET_KEY is not set" in caplog.text
    other = make_catalogue(instance_path=tmp_path / "other-instance", seed=False)
    assert other.secret_key != first.secret_key


def test_example_secret_key_is_used_when_set(make_catalogue, monkeypatch, tmp_path):
    monkeypatch.setenv("EXAMPLE_SECRET_KEY", "a-private-key-of-this-deployment")
    app = make_catalogue(seed=False)
    assert app.secret_key == "a-private-key-of-this-deployment"
    assert not (tmp_path / "instance" / "secret_key").exists()


@pytest.mark.parametrize("key", ["demo-only-secret", "short"])
def test_the_app_does_not_start_with_a_known_or_short_key(make_catalogue, monkeypatch, key):
    monkeypatch.setenv("EXAMPLE_SECRET_KEY", key)
    with pytest.raises(RuntimeError, match="EXAMPLE_SECRET_KEY"):
        make_catalogue(seed=False)


@pytest.mark.parametrize(
    "next_value",
    ["/\t/evil.example/", "/%09/evil.example/", "//evil.example/", "/\\evil.example/", "https://evil.example/"],
    ids=repr,
)
def test_login_sends_back_only_to_a_page_of_this_site(make_catalogue, next_value):
    client = make_catalogue().test_client()

    response = client.post("/login", query_string={"next": next_value}, data={"username": "clerk", "password": "clerk"})

    assert response.status_code == 302
    target = urlsplit(urljoin("http://localhost/login", response.headers["Location"].replace("\t", "")))
    assert (target.scheme, target.netloc, target.path) == ("http", "localhost", "/admin/")


def test_login_follows_a_next_path_of_this_site(make_catalogue):
    client = make_catalogue().test_client()

    response = client.post(
        "/login", query_string={"next": "/admin/jobs/?status=failed"}, data={"username": "clerk", "password": "clerk"}
    )

    assert response.headers["Location"] == "/admin/jobs/?status=failed"


def _log_in(client, who: str = "clerk") -> None:
    response = client.post("/login", data={"username": who, "password": who})
    assert response.status_code == 302


def test_the_language_menu_switches_flask_admin_and_the_job_pages_together(make_catalogue):
    """The demo's menu offers English, Français and Deutsch; a choice holds for the session and
    both Flask-Admin's own words and the job pages follow it."""
    client = make_catalogue().test_client()
    _log_in(client)
    page = client.get("/admin/jobs/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Show child jobs" in page and ">English</a>" not in page
    for code, name in (("en", "English"), ("fr", "Français"), ("de", "Deutsch")):
        assert f'name="language" value="{code}" lang="{code}"' in page and f">{name}</button>" in page

    response = client.post(
        "/language", data={"language": "de"}, headers={"Referer": "http://localhost/admin/jobs/?status=failed"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/jobs/?status=failed"
    german = client.get("/admin/jobs/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Unterjobs anzeigen" in german and "Show child jobs" not in german  # ours
    assert "Startseite" in german or "Start" in german  # Flask-Admin's "Home"
    assert 'lang="de" aria-current="true">Deutsch<' in german

    client.post("/language", data={"language": "fr", "next": "/admin/my-jobs/"})
    assert "Mes tâches" in client.get("/admin/my-jobs/").get_data(as_text=True)


def test_without_a_choice_the_browsers_language_decides(make_catalogue):
    client = make_catalogue().test_client()
    _log_in(client)
    assert "Afficher les sous-tâches" in client.get("/admin/jobs/", headers={"Accept-Language": "fr-CH"}).get_data(
        as_text=True
    )
    assert "Show child jobs" in client.get("/admin/jobs/", headers={"Accept-Language": "es"}).get_data(as_text=True)


@pytest.mark.parametrize("next_value", ["//evil.example/", "https://evil.example/"])
def test_the_language_menu_sends_back_only_to_a_page_of_this_site(make_catalogue, next_value):
    client = make_catalogue().test_client()
    response = client.post("/language", data={"language": "fr", "next": next_value})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    response = client.post("/language", data={"language": "fr"}, headers={"Referer": "https://evil.example/admin/x"})
    assert response.headers["Location"] == "/admin/"


def test_an_unknown_language_or_a_get_is_refused(make_catalogue):
    client = make_catalogue().test_client()
    assert client.post("/language", data={"language": "xx"}).status_code == 400
    assert client.get("/language?language=fr").status_code == 405


def test_changing_the_language_needs_the_csrf_token(make_catalogue):
    client = make_catalogue(WTF_CSRF_ENABLED=True).test_client()
    assert client.post("/language", data={"language": "fr"}).status_code == 400
