"""The users of the test hosts and how a test client logs in.

``USERS`` (by key): ``admin`` (role ``admin``: every permission), ``manager`` (view_all + stop,
its role given as an object with ``.name``), ``clerk_a`` (role ``clerk``: may launch tasks through
the API) and ``clerk_b`` (no extra permission)
and ``auditor`` (view_all). Anonymous is a client that never logged in. A host built with
``login="page"`` (``apps.build_app``) logs a client in at ``/_test/login/<key>``.

The example catalogue (``example_app``) has users of its own: see ``examples.log_in``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from flask.testing import FlaskClient
from flask_login import UserMixin

from flask_jobmonitor.permissions import LAUNCH, PERMISSIONS, STOP, VIEW_ALL


class Role(NamedTuple):
    """A role object as Flask-Security and most ORMs have them: only ``.name`` matters."""

    name: str


class User(UserMixin):
    """The host's user: an id, a display name and roles (names or objects with ``.name``)."""

    def __init__(self, id: str, name: str, roles: list[Any] | None = None) -> None:
        self.id = id
        self.name = name
        self.roles = roles or []

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name}>"


USERS: dict[str, User] = {
    "admin": User("1", "Ada Admin", ["admin"]),
    "manager": User("2", "Max Manager", [Role("manager")]),
    "clerk_a": User("3", "Clara Clerk", ["clerk"]),
    "clerk_b": User("4", "Carl Clerk", []),
    "auditor": User("5", "Audrey Auditor", ["auditor"]),
}
USERS_BY_ID = {user.id: user for user in USERS.values()}
ROLE_PERMISSIONS = {"admin": PERMISSIONS, "manager": (VIEW_ALL, STOP), "auditor": (VIEW_ALL,), "clerk": (LAUNCH,)}


def log_in(client: FlaskClient, who: str | None) -> FlaskClient:
    """Log ``client`` in as ``USERS[who]`` on a host with ``login="page"``; ``None``: stay anonymous."""
    if who is not None:
        assert client.get(f"/_test/login/{who}").status_code == 200
    return client


def csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token for ``client``'s session (``generate_csrf()`` in one of its requests)."""
    response = client.get("/_test/csrf")
    assert response.status_code == 200
    return response.get_data(as_text=True)
