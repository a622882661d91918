"""Demo users and roles, with Flask-Login. Passwords are hashed; the demo logins are printed by scripts/demo.

The session is kept as a host should keep it (docs/developers.md, "Security headers and sessions"):
its cookie is HttpOnly, SameSite=Lax, and Secure when the app is served over HTTPS
(``EXAMPLE_HTTPS=1``); Flask-Login's session protection is "strong" (a cookie used from another
browser or address is dropped); and a logout ends every copy of the session cookie, not only the
browser's own: the session holds the user's session token next to Flask-Login's user id, the
user loader accepts the session only while that token is the user's, and the logout replaces it,
so a cookie copied before the logout carries a token that no longer exists. ``get_id()`` stays
the plain id: flask-jobmonitor stores it as the owner of each job.
"""

from __future__ import annotations

import hmac
import os
import secrets

import sqlalchemy as sa
from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from flask_jobmonitor import same_site_path

from .extensions import db

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "strong"
bp = Blueprint("auth", __name__)

#: What each demo role may do with jobs (JOBMONITOR_ROLE_PERMISSIONS).
ROLE_PERMISSIONS = {
    "admin": [
        "jobmonitor.view_all",
        "jobmonitor.stop",
        "jobmonitor.manage",
        "jobmonitor.delete",
        "jobmonitor.view_system",
        "jobmonitor.view_statistics",
        "jobmonitor.pause_all",
        "jobmonitor.view_tracebacks",
        "jobmonitor.view_audit",
        "jobmonitor.launch",
        "jobmonitor.manage_schedules",
    ],
    "manager": ["jobmonitor.view_all", "jobmonitor.stop"],
    "auditor": ["jobmonitor.view_all", "jobmonitor.view_audit"],
    "clerk": ["jobmonitor.launch"],  # launches imports and exports through the API too
}
DEMO_USERS = [
    ("admin", "Alice Admin", "admin"),
    ("manager", "Mark Manager", "manager"),
    ("clerk", "Chris Clerk", "clerk"),
    ("auditor", "Audrey Auditor", "auditor"),
]


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(32))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    #: Kept in each session of the user; replaced at logout, which ends every session.
    session_token: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)

    def new_session_token(self) -> None:
        self.session_token = secrets.token_urlsafe(32)

    @property
    def roles(self) -> list[str]:
        return [self.role]

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)


def init_app(app: Flask) -> None:
    """Log-in and session cookie settings of the catalogue (see the module docstring)."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE=app.config.get("SESSION_COOKIE_SAMESITE") or "Lax",
        SESSION_COOKIE_SECURE=bool(app.config.get("SESSION_COOKIE_SECURE")) or os.environ.get("EXAMPLE_HTTPS") == "1",
    )
    login_manager.init_app(app)


#: The session key of the user's session token (see the module docstring).
SESSION_TOKEN_KEY = "catalogue_session_token"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The user of the session while its token is theirs (not after a logout)."""
    user = db.session.get(User, int(user_id)) if user_id.isascii() and user_id.isdecimal() else None
    token = session.get(SESSION_TOKEN_KEY)
    if user is None or not user.session_token or not isinstance(token, str):
        return None
    return user if hmac.compare_digest(user.session_token, token) else None


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        user = db.session.execute(db.select(User).filter_by(username=request.form.get("username", ""))).scalar()
        if user and check_password_hash(user.password_hash, request.form.get("password", "")):
            if not user.session_token:
                user.new_session_token()
                db.session.commit()
            login_user(user)
            session[SESSION_TOKEN_KEY] = user.session_token
            return redirect(same_site_path(request.args.get("next"), url_for("admin.index")))
        flash("Wrong user name or password.", "error")
    return render_template("login.html", users=DEMO_USERS)


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        current_user.new_session_token()  # every copy of the session cookie ends here
        db.session.commit()
    logout_user()
    session.pop(SESSION_TOKEN_KEY, None)
    return redirect(url_for("auth.login"))
