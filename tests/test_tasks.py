"""Registering tracked tasks and checking the arguments a job will be run with."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from flask_jobmonitor import InvalidJobArguments, JobContext, JobMonitor, TrackedTask, UnknownTask
from flask_jobmonitor.tasks import TaskRegistry, default_task_name

from . import tasks
from .support.extensions import jobmonitor


@pytest.fixture
def extension() -> JobMonitor:
    """An extension object of its own, so registrations do not leak into the shared one."""
    return JobMonitor()


def takes_a_value(ctx: JobContext, value, *, flag: bool = False) -> None:  # type: ignore[no-untyped-def]
    pass


def test_task_name_defaults_to_module_and_qualname(extension):
    registered = extension.task(takes_a_value)

    assert isinstance(registered, TrackedTask)
    assert registered.name == "tests.test_tasks.takes_a_value"
    assert default_task_name(takes_a_value) == "tests.test_tasks.takes_a_value"


def test_test_tasks_are_registered_under_their_qualified_names():
    assert "tests.tasks.noop" in jobmonitor.tasks
    assert jobmonitor.tasks.get("tests.tasks.import_rows") is tasks.import_rows


def test_decorator_with_options_records_them(extension):
    @extension.task(
        name="imports.products",
        type="import",
        category="catalogue",
        steps=["Read", "Save"],
        resumable=True,
        timeout=60,
        description="Import products",
    )
    def import_products(ctx: JobContext) -> None:
        pass

    assert import_products.name == "imports.products"
    assert (import_products.type, import_products.category) == ("import", "catalogue")
    assert import_products.steps == ("Read", "Save")
    assert import_products.resumable is True
    assert import_products.timeout == 60
    assert import_products.description == "Import products"
    assert extension.tasks.get("imports.products") is import_products


def test_decorator_defaults(extension):
    registered = extension.task()(takes_a_value)

    assert (registered.type, registered.category, registered.steps) == ("general", None, ())
    assert (registered.resumable, registered.timeout, registered.description) == (False, None, None)


def test_steps_accept_any_iterable_and_are_kept_as_a_tuple(extension):
    registered = extension.task(steps=(name for name in ["One", "Two"]))(takes_a_value)

    assert registered.steps == ("One", "Two")


def test_duplicate_step_names_are_rejected(extension):
    with pytest.raises(ValueError, match="step names must be unique"):
        extension.task(steps=["Read", "Save", "Read"])(takes_a_value)

    assert "tests.test_tasks.takes_a_value" not in extension.tasks


def test_a_second_function_under_the_same_name_is_rejected(extension):
    extension.task(name="shared.name")(takes_a_value)

    def other(ctx: JobContext) -> None:
        pass

    with pytest.raises(ValueError, match=r"'shared\.name' is already registered \(tests\.test_tasks\.takes_a_value\)"):
        extension.task(name="shared.name")(other)

    assert extension.tasks.get("shared.name").func is takes_a_value


def test_registering_the_same_function_again_is_allowed(extension):
    first = extension.task(takes_a_value)
    second = extension.task(takes_a_value)

    assert extension.tasks.get(takes_a_value) is second
    assert first.func is second.func


def test_registries_of_two_extension_objects_are_separate(extension):
    extension.task(takes_a_value)

    assert "tests.test_tasks.takes_a_value" in extension.tasks
    assert "tests.test_tasks.takes_a_value" not in jobmonitor.tasks


def test_registry_resolves_names_tasks_and_functions(extension):
    registered = extension.task(takes_a_value)

    assert extension.tasks.get("tests.test_tasks.takes_a_value") is registered
    assert extension.tasks.get(registered) is registered
    assert extension.tasks.get(takes_a_value) is registered
    assert list(extension.tasks) == [registered]


def test_registry_raises_unknown_task_naming_it():
    with pytest.raises(UnknownTask, match=r"'no\.such\.task'") as unknown:
        TaskRegistry().get("no.such.task")

    assert unknown.value.name == "no.such.task"
    assert isinstance(unknown.value, LookupError)


def test_unregistered_function_is_an_unknown_task(extension):
    with pytest.raises(UnknownTask, match=r"tests\.test_tasks\.takes_a_value"):
        extension.tasks.get(takes_a_value)


def test_tracked_task_can_be_called_directly(extension):
    calls = []

    @extension.task
    def direct(ctx: object, value: int) -> int:
        calls.append((ctx, value))
        return value * 2

    assert direct("a context", 21) == 42
    assert calls == [("a context", 21)]


# -- arguments -----------------------------------------------------------------------------------


@pytest.fixture
def task(extension) -> TrackedTask:
    return extension.task(takes_a_value)


def test_arguments_become_json_params(task):
    params = task.check_arguments([{"ids": [1, 2]}], {"flag": True})

    assert params == {"args": [{"ids": [1, 2]}], "kwargs": {"flag": True}}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([], {}, "missing a required argument"),
        ([1, 2], {}, "too many positional arguments"),
        ([1], {"colour": "red"}, "unexpected keyword argument"),
        ([1], {"value": 2}, "multiple values"),
    ],
)
def test_arguments_that_do_not_fit_the_signature_are_refused(task, args, kwargs, message):
    with pytest.raises(InvalidJobArguments, match=message):
        task.check_arguments(args, kwargs)


@pytest.mark.parametrize(
    "value",
    [{1, 2}, datetime(2024, 1, 1), math.nan, math.inf, b"bytes", (1, 2), {1: "int key"}, [("nested", "tuple")]],
    ids=["set", "datetime", "nan", "inf", "bytes", "tuple", "int-key", "nested-tuple"],
)
def test_values_that_are_not_json_are_refused(task, value):
    with pytest.raises(InvalidJobArguments, match=r"tests\.test_tasks\.takes_a_value"):
        task.check_arguments([value], {})


def test_invalid_arguments_error_is_also_a_type_error(task):
    with pytest.raises(TypeError):
        task.check_arguments([], {})
