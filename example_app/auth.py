"""Demo users and roles, with Flask-Login. Passwords are hashed; the demo logins are printed by scripts/demo."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import LoginManager, UserMixin, login_user, logout_user
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from flask_jobmonitor import same_site_path

from .extensions import db

login_manager = LoginManager()
login_manager.login_view = "auth.login"
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
    ],
    "manager": ["jobmonitor.view_all", "jobmonitor.stop"],
    "auditor": ["jobmonitor.view_all"],
    "clerk": [],
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

    @property
    def roles(self) -> list[str]:
        return [self.role]

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        user = db.session.execute(db.select(User).filter_by(username=request.form.get("username", ""))).scalar()
        if user and check_password_hash(user.password_hash, request.form.get("password", "")):
            login_user(user)
            return redirect(same_site_path(request.args.get("next"), url_for("admin.index")))
        flash("Wrong user name or password.", "error")
    return render_template("login.html", users=DEMO_USERS)


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    return redirect(url_for("auth.login"))
