"""How a host's user becomes the id and display name stored on a job."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask_login import AnonymousUserMixin, UserMixin

from flask_jobmonitor.users import describe_user


class Member(UserMixin):
    def __init__(self, **attributes: object) -> None:
        self.id = 5
        self.__dict__.update(attributes)


@pytest.mark.parametrize(
    ("attributes", "name"),
    [
        ({"jobmonitor_display_name": "JM", "display_name": "D", "name": "N"}, "JM"),
        ({"display_name": "D", "full_name": "F", "name": "N"}, "D"),
        ({"full_name": "F", "name": "N", "username": "U"}, "F"),
        ({"name": "N", "username": "U", "email": "e@x"}, "N"),
        ({"username": "U", "email": "e@x"}, "U"),
        ({"email": "e@x"}, "e@x"),
        ({"name": "", "email": "e@x"}, "e@x"),
        ({}, "5"),
    ],
)
def test_display_name_is_the_first_non_empty_name_attribute(attributes, name):
    assert describe_user(Member(**attributes)) == ("5", name)


def test_get_id_wins_over_the_id_attribute():
    class Custom(UserMixin):
        id = 1

        def get_id(self) -> str:
            return "alt-1"

    assert describe_user(Custom()) == ("alt-1", "alt-1")


def test_object_with_only_an_id_attribute():
    assert describe_user(SimpleNamespace(id=9, username="nine")) == ("9", "nine")


@pytest.mark.parametrize("user", [None, AnonymousUserMixin(), SimpleNamespace(is_anonymous=True, id=3)])
def test_nobody_and_anonymous_users_are_stored_as_nobody(user):
    assert describe_user(user) == (None, None)


def test_pairs_and_plain_ids():
    assert describe_user((3, "Cy")) == ("3", "Cy")
    assert describe_user("cron") == ("cron", "cron")
    assert describe_user(12) == ("12", "12")


def test_user_without_an_id_raises_type_error():
    with pytest.raises(TypeError, match="cannot tell the id"):
        describe_user(SimpleNamespace(name="ghost"))
