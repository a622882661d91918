"""How a host's user object becomes the id and name stored on a job.

Jobs keep the user's id as a string and a display name instead of a foreign key, so the
extension works with any user model (Flask-Login's ``UserMixin``, Flask-Security, a plain
object, or a ``(id, name)`` pair for scripts).
"""

from __future__ import annotations

from typing import Any

_NAME_ATTRIBUTES = ("jobmonitor_display_name", "display_name", "full_name", "name", "username", "email")


def describe_user(user: Any) -> tuple[str | None, str | None]:
    """Return ``(id, display name)`` for ``user``; ``(None, None)`` for nobody or an anonymous user.

    The display name is the first of ``jobmonitor_display_name``, ``display_name``,
    ``full_name``, ``name``, ``username`` and ``email`` that the object has, else its id.
    """
    if user is None or getattr(user, "is_anonymous", False):
        return None, None
    if isinstance(user, tuple):  # (id, name); (None, name): someone with no id (the command line)
        user_id, name = user
        return (None if user_id is None else str(user_id)), (None if name is None else str(name))
    if isinstance(user, str | int):
        return str(user), str(user)
    get_id = getattr(user, "get_id", None)
    raw_id = get_id() if callable(get_id) else getattr(user, "id", None)
    if raw_id is None:
        raise TypeError(f"cannot tell the id of user {user!r}: give it get_id() or id, or pass (id, name)")
    for attribute in _NAME_ATTRIBUTES:
        value = getattr(user, attribute, None)
        if value:
            return str(raw_id), str(value)
    return str(raw_id), str(raw_id)
