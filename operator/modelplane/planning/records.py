"""Plan records built from values the planner has already typed, without pydantic's per-field work.

One plan against 100 pools builds about a thousand records (a candidate per pool × format × TP, most with
estimates). `model_construct` looks up every field's aliases and defaults on each call, which made it the
largest single cost of planning. The records built here are the ones `model_construct` builds when every
field is given: the same `__dict__`, in declaration order (serialization follows it), and the same fields set.
"""

from functools import cache
from typing import Any, TypeVar

from modelplane.api.base import WireModel

Record = TypeVar("Record", bound=WireModel)

_set = object.__setattr__


@cache
def _field_names(model: type[WireModel]) -> tuple[str, ...]:
    return tuple(model.model_fields)


def record(model: type[Record], **fields: Any) -> Record:
    """An instance of `model`, unvalidated, from all of its fields given in declaration order."""
    if tuple(fields) != _field_names(model):
        raise TypeError(f"{model.__name__} takes its fields {_field_names(model)} in order, got {tuple(fields)}")
    instance = model.__new__(model)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(fields))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance
