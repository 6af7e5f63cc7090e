"""Plan records built from values the planner has already typed, without pydantic's per-field work.

One plan against 100 pools builds about a thousand records (a candidate per pool × format × TP, most with
estimates). `model_construct` looks up every field's aliases and defaults on each call, which made it the
largest single cost of planning. The records built here are the ones `model_construct` builds when every
field is given: the same `__dict__`, in declaration order (serialization follows it), and the same fields set.
As every field is set, every record of a model shares one fields set: one allocation fewer per record, and
fewer for the garbage collector to traverse. Sharing is safe because pydantic never changes it in place on a
frozen model (`model_copy` changes a copy).
"""

from functools import cache
from typing import Any, TypeVar

from modelplane.api.base import WireModel

Record = TypeVar("Record", bound=WireModel)

_set = object.__setattr__
_new = object.__new__


@cache
def _fields(model: type[WireModel]) -> tuple[tuple[str, ...], set[str]]:
    """The field names in declaration order, and the fields set every record of `model` shares.

    `object.__new__` is what `model.__new__` resolves to, but looking it up through pydantic's metaclass
    costs a quarter of a record.
    """
    if not model.model_config.get("frozen"):
        raise TypeError(f"{model.__name__} is not frozen: its records cannot share a fields set")
    if model.__new__ is not _new:
        raise TypeError(f"{model.__name__} defines __new__: records are built with object.__new__")
    return tuple(model.model_fields), set(model.model_fields)


def record(model: type[Record], **fields: Any) -> Record:
    """An instance of `model`, unvalidated, from all of its fields given in declaration order.

    Only the count is checked here, as it is cheap; the order is fixed by each call's source text, so
    tests/planning/test_records.py checks every call site's keyword order against the model's fields once,
    instead of every record paying for it (a quarter of a record's cost).
    """
    names, fields_set = _fields(model)
    if len(fields) != len(names):
        raise TypeError(f"{model.__name__} takes its fields {names} in order, got {tuple(fields)}")
    instance = _new(model)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", fields_set)
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance
