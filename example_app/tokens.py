"""API tokens for machine clients of the job monitor's JSON API, the Flask-Login way.

A script or another service sends ``Authorization: Bearer <token>``; Flask-Login's
``request_loader`` (:func:`load_user_from_token`) turns a valid token into its user, and the
package's API then checks that user's permissions as it does for a person (docs/developers.md,
"The JSON API"). Such a request carries no session cookie, so the package asks it for no CSRF
token; a browser's request, with its cookie, still needs one.

Rules a host should keep too:
* Only a hash of each token is stored (SHA-256: tokens are long and random, so no slow hash is
  needed); the token itself is shown once, when it is made (``flask create-token``).
* A token expires (``--days``, 90 by default); an expired, revoked or unknown token logs no one
  in, and the API answers 401 with ``WWW-Authenticate: Bearer``.
* A token acts as its user: it holds that user's permissions, no more.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

import click
import sqlalchemy as sa
from flask import Flask, Request
from flask.cli import with_appcontext
from sqlalchemy.orm import Mapped, mapped_column

from .auth import User, login_manager
from .extensions import db

PREFIX = "cat_"
DEFAULT_DAYS = 90


class ApiToken(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime)
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(user: User, name: str, days: int = DEFAULT_DAYS) -> str:
    """Make a token for ``user`` that expires in ``days``; return it (only its hash is kept)."""
    token = PREFIX + secrets.token_urlsafe(32)
    now = _now()
    db.session.add(
        ApiToken(
            user_id=user.id, name=name, token_hash=_digest(token), created_at=now, expires_at=now + timedelta(days=days)
        )
    )
    db.session.commit()
    return token


@login_manager.request_loader
def load_user_from_token(request: Request) -> User | None:
    """The user of a valid ``Authorization: Bearer`` token; None (no one) otherwise."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(PREFIX) or len(token) > 200:
        return None
    # looked up by the token's hash, an index probe: what a timing difference could reveal is
    # the hash of a guess, which says nothing about any stored token
    row = db.session.execute(db.select(ApiToken).filter_by(token_hash=_digest(token))).scalar()
    if row is None or row.expires_at <= _now():
        return None
    return db.session.get(User, row.user_id)


@click.command("create-token")
@click.argument("username")
@click.option("--name", default="api", show_default=True, help="What the token is for (shown to its owner).")
@click.option("--days", default=DEFAULT_DAYS, show_default=True, type=click.IntRange(1, 3650))
@with_appcontext
def create_token_command(username: str, name: str, days: int) -> None:
    """Make an API token for USERNAME and print it (it is shown this once)."""
    db.create_all()  # the token table, in a catalogue seeded before it existed
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar()
    if user is None:
        raise click.UsageError(f"no user {username!r}; the demo users are made by 'flask seed'")
    click.echo(issue(user, name, days))


@click.command("revoke-tokens")
@click.argument("username")
@with_appcontext
def revoke_tokens_command(username: str) -> None:
    """Delete every API token of USERNAME."""
    user = db.session.execute(db.select(User).filter_by(username=username)).scalar()
    if user is None:
        raise click.UsageError(f"no user {username!r}")
    removed = db.session.execute(sa.delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount
    db.session.commit()
    click.echo(f"{removed} token(s) revoked")


def init_app(app: Flask) -> None:
    app.cli.add_command(create_token_command)
    app.cli.add_command(revoke_tokens_command)
