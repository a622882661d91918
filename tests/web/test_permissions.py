"""permissions.py: who may see and do what, decided on the server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask_login import AnonymousUserMixin

from flask_jobmonitor.permissions import (
    ACCESS,
    DELETE,
    MANAGE,
    PERMISSIONS,
    STOP,
    VIEW_ALL,
    VIEW_SYSTEM,
    JobPermissions,
)

from ..support.extensions import db
from ..support.rows import add_job
from ..support.users import ROLE_PERMISSIONS, USERS, Role, User

ANONYMOUS = AnonymousUserMixin()


def job_of(owner: str | None, *, is_system: bool = False) -> Any:
    return SimpleNamespace(run_by_id=USERS[owner].id if owner else None, is_system=is_system)


@pytest.fixture
def permissions() -> JobPermissions:
    return JobPermissions(role_permissions=ROLE_PERMISSIONS)


# -- seeing jobs -----------------------------------------------------------------------------------


def test_every_logged_in_user_may_open_the_tracker(permissions):
    for user in USERS.values():
        assert permissions.can_access(user)


def test_owner_sees_own_job(permissions):
    assert permissions.can_view(USERS["clerk_a"], job_of("clerk_a"))


def test_another_users_job_is_hidden_without_view_all(permissions):
    assert not permissions.can_view(USERS["clerk_b"], job_of("clerk_a"))
    assert not permissions.can_view_all(USERS["clerk_b"])


def test_view_all_sees_every_users_job(permissions):
    for who in ("admin", "manager", "auditor"):
        assert permissions.can_view_all(USERS[who])
        assert permissions.can_view(USERS[who], job_of("clerk_a"))
        assert permissions.can_view(USERS[who], job_of(None))


def test_a_job_of_nobody_is_hidden_from_plain_users(permissions):
    assert not permissions.can_view(USERS["clerk_a"], job_of(None))


def test_system_jobs_need_view_system_even_for_their_owner_and_view_all(permissions):
    assert not permissions.can_view(USERS["clerk_a"], job_of("clerk_a", is_system=True))
    assert not permissions.can_view(USERS["auditor"], job_of(None, is_system=True))
    assert not permissions.can_see_system(USERS["auditor"])
    assert permissions.can_see_system(USERS["admin"])
    assert permissions.can_view(USERS["admin"], job_of(None, is_system=True))


def test_anonymous_may_do_nothing(permissions):
    job = job_of(None)
    assert not permissions.can_access(ANONYMOUS)
    assert not permissions.can_access(None)
    for question in (permissions.can_view, permissions.can_stop, permissions.can_manage, permissions.can_delete):
        assert not question(ANONYMOUS, job)
        assert not question(None, job)
    assert not permissions.can_view_all(ANONYMOUS)
    assert not permissions.can_see_system(ANONYMOUS)
    assert not permissions.can_view_statistics(ANONYMOUS)
    assert permissions.user_id(ANONYMOUS) is None
    assert not permissions.is_owner(ANONYMOUS, job)


def test_statistics_need_view_statistics(permissions):
    assert permissions.can_view_statistics(USERS["admin"])
    assert not permissions.can_view_statistics(USERS["auditor"])
    assert not permissions.can_view_statistics(USERS["clerk_a"])


# -- acting on jobs --------------------------------------------------------------------------------


def test_owner_may_stop_and_manage_but_not_delete_own_job(permissions):
    clerk, job = USERS["clerk_a"], job_of("clerk_a")
    assert permissions.can_stop(clerk, job)
    assert permissions.can_manage(clerk, job)
    assert not permissions.can_delete(clerk, job)


def test_view_all_alone_does_not_allow_acting_on_others_jobs(permissions):
    auditor, job = USERS["auditor"], job_of("clerk_a")
    assert permissions.can_view(auditor, job)
    assert not permissions.can_stop(auditor, job)
    assert not permissions.can_manage(auditor, job)
    assert not permissions.can_delete(auditor, job)


def test_stop_permission_allows_stopping_others_jobs_but_not_managing_them(permissions):
    manager, job = USERS["manager"], job_of("clerk_a")
    assert permissions.can_stop(manager, job)
    assert not permissions.can_manage(manager, job)
    assert not permissions.can_delete(manager, job)


def test_admin_may_stop_manage_and_delete_any_job(permissions):
    admin, job = USERS["admin"], job_of("clerk_a")
    assert permissions.can_stop(admin, job)
    assert permissions.can_manage(admin, job)
    assert permissions.can_delete(admin, job)


def test_acting_needs_seeing_first():
    # stop and manage without view_all: other people's jobs stay invisible, so untouchable
    permissions = JobPermissions(role_permissions={"operator": (STOP, MANAGE, DELETE)})
    operator, job = User("9", "Otto Operator", ["operator"]), job_of("clerk_a")
    assert not permissions.can_view(operator, job)
    assert not permissions.can_stop(operator, job)
    assert not permissions.can_manage(operator, job)
    assert not permissions.can_delete(operator, job)


def test_other_clerk_may_not_act_on_a_job_it_cannot_see(permissions):
    clerk_b, job = USERS["clerk_b"], job_of("clerk_a")
    assert not permissions.can_stop(clerk_b, job)
    assert not permissions.can_manage(clerk_b, job)
    assert not permissions.can_delete(clerk_b, job)


# -- where the answers come from -------------------------------------------------------------------


def test_default_role_permissions_give_role_admin_everything_and_others_nothing_extra():
    permissions = JobPermissions()
    admin, clerk = User("1", "A", ["admin"]), User("2", "B", ["auditor"])
    assert all(permissions.has(admin, name) for name in PERMISSIONS)
    assert [name for name in PERMISSIONS if permissions.has(clerk, name)] == [ACCESS]


def test_roles_may_be_strings_or_objects_with_a_name(permissions):
    as_string = User("7", "S", ["auditor"])
    as_object = User("8", "O", [Role("auditor")])
    as_tuple = User("9", "T", ("auditor",))
    for user in (as_string, as_object, as_tuple):
        assert permissions.has(user, VIEW_ALL), user
        assert not permissions.has(user, STOP), user


def test_roles_without_a_name_and_unknown_roles_grant_nothing(permissions):
    user = User("7", "S", [object(), Role("nobody-knows-me"), None])
    assert [name for name in PERMISSIONS if permissions.has(user, name)] == [ACCESS]


def test_a_user_without_roles_attribute_holds_only_access(permissions):
    plain = SimpleNamespace(is_authenticated=True, is_anonymous=False, get_id=lambda: "11", name="Plain")
    assert [name for name in PERMISSIONS if permissions.has(plain, name)] == [ACCESS]
    assert permissions.can_view(plain, SimpleNamespace(run_by_id="11", is_system=False))


class PermissionUser(User):
    """A user whose model answers permission questions itself (Flask-Security style)."""

    def __init__(self, granted: set[str], roles: list[Any] | None = None) -> None:
        super().__init__("20", "Pat Permission", roles)
        self.granted = granted
        self.asked: list[str] = []

    def has_permission(self, name: str) -> bool:
        self.asked.append(name)
        return name in self.granted


def test_has_permission_on_the_user_object_is_used(permissions):
    user = PermissionUser({VIEW_ALL, VIEW_SYSTEM})
    assert permissions.can_view(user, job_of("clerk_a", is_system=True))
    assert not permissions.can_stop(user, job_of("clerk_a"))
    assert VIEW_ALL in user.asked and STOP in user.asked


def test_has_permission_wins_over_roles(permissions):
    user = PermissionUser(set(), roles=["admin"])
    assert not permissions.can_view_all(user)
    assert not permissions.can_delete(user, job_of("clerk_a"))


def test_access_is_granted_without_asking_has_permission(permissions):
    user = PermissionUser(set())
    assert permissions.can_access(user)
    assert ACCESS not in user.asked


def test_permission_checker_overrides_everything():
    asked: list[tuple[str, str]] = []

    def checker(user: Any, name: str) -> bool:
        asked.append((user.id, name))
        return user.id == "3" and name in (ACCESS, VIEW_ALL, DELETE)

    permissions = JobPermissions(checker=checker, role_permissions=ROLE_PERMISSIONS)
    admin, clerk = USERS["admin"], USERS["clerk_a"]
    # the role "admin" and even plain access count for nothing against the checker
    assert not permissions.can_access(admin)
    assert not permissions.can_view(admin, job_of("admin"))
    assert not permissions.can_stop(admin, job_of("admin"))
    # the checker may grant what no role gives
    assert permissions.can_view(clerk, job_of("clerk_b"))
    assert permissions.can_delete(clerk, job_of("clerk_b"))
    assert not permissions.can_stop(clerk, job_of("clerk_b"))
    assert ("1", ACCESS) in asked


def test_permission_checker_wins_over_has_permission():
    permissions = JobPermissions(checker=lambda user, name: name == ACCESS)
    user = PermissionUser(set(PERMISSIONS))
    assert permissions.can_access(user)
    assert not permissions.can_view_all(user)
    assert user.asked == []


def test_permission_checker_is_never_asked_about_anonymous_users():
    asked: list[str] = []
    permissions = JobPermissions(checker=lambda user, name: asked.append(name) or True)
    assert not permissions.can_access(ANONYMOUS)
    assert not permissions.can_view(ANONYMOUS, job_of(None))
    assert asked == []


def test_without_a_request_there_is_no_current_user(app):
    with app.app_context():
        from flask_jobmonitor.state import get_state

        assert get_state(app).permissions.current_user() is None


def test_permission_checker_from_config_decides_the_pages(make_app):
    def checker(user: Any, name: str) -> bool:
        return user.id == "3" and name in (ACCESS, VIEW_ALL)

    app = make_app(JOBMONITOR_PERMISSION_CHECKER=checker)
    with app.app_context():
        engine = db.engine
    foreign = add_job(engine, owner="clerk_b")
    clerk_a = app.test_client()
    clerk_a.get("/_test/login/clerk_a")
    admin = app.test_client()
    admin.get("/_test/login/admin")

    assert clerk_a.get(f"/admin/jobs/{foreign}/").status_code == 200
    assert admin.get("/admin/jobs/").status_code == 403
    assert admin.get(f"/jobmonitor/api/jobs/{foreign}").status_code == 403
