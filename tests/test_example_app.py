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
