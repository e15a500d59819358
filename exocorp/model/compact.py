"""Long-lived models made smaller: their strings interned, the sets pydantic keeps per
instance shared.

Pydantic keeps the input's own ``str`` objects, and a JSON decoder makes a new one for each
occurrence, so a cache of thousands of objects holds thousands of copies of the same condition
reasons, messages, timestamps, model names...: :func:`interned` makes equal strings of its input
one object before it is parsed (an interned string is freed with its last reference).

Pydantic gives every model instance its own ``__pydantic_fields_set__`` (the names of the fields
the input set, read by ``exclude_unset`` and ``model_fields_set``). A set costs 216 to 728 bytes,
more than the rest of a small model: in a parsed Exocorp (about 25 nested models) those sets were
13 of 22 KiB (docs/performance.md, "Gateway memory and the cached read's CPU"). Across a cache
of thousands of objects they hold only a few distinct values, so :func:`share_fields_sets`
replaces each by one shared, read-only copy. Only for models nobody assigns to (a cache's,
shared by every request): an assignment would have to add to the shared set, and raises instead
(pydantic has stored the value by then: the raise reports a bug, it does not undo it).
``model_copy`` and ``copy.deepcopy`` still work: a copy gets its own set.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

__all__ = ["SharedFieldsSet", "interned", "share_fields_sets"]


def interned(value: Any) -> Any:
    """A copy of the JSON value ``value`` with every string (keys too) interned."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: interned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interned(item) for item in value]
    return value


class SharedFieldsSet(set[str]):
    """A fields set shared by many instances: read-only (pydantic's serialiser wants a ``set``,
    so it cannot be a ``frozenset``). Copying it (``model_copy``, ``copy.copy``) gives a plain,
    private ``set``, which pydantic adds the updated names to."""

    def _read_only(self, *args: object) -> None:
        raise AttributeError("a cached model's fields set is shared: copy the model to edit it")

    add = discard = remove = update = difference_update = intersection_update = _read_only
    symmetric_difference_update = clear = _read_only

    def pop(self) -> str:
        raise AttributeError("a cached model's fields set is shared: copy the model to edit it")

    def __ior__(self, other: object) -> SharedFieldsSet:  # type: ignore[override]
        self._read_only()
        return self

    __iand__ = __isub__ = __ixor__ = __ior__

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> set[str]:
        return set(self)

    def __reduce__(self) -> tuple[type[set[str]], tuple[list[str]]]:
        return set, (list(self),)


_SHARED: dict[frozenset[str], SharedFieldsSet] = {}


def _shared(names: frozenset[str]) -> SharedFieldsSet:
    shared = _SHARED.get(names)
    if shared is None:
        # Bounded by the distinct combinations of fields the models' inputs set: a few hundred.
        shared = _SHARED[names] = SharedFieldsSet(names)
    return shared


def share_fields_sets(model: BaseModel) -> None:
    """Give ``model`` and every model nested in it (in lists and dicts too) the shared copy of
    its fields set."""
    object.__setattr__(model, "__pydantic_fields_set__",
                       _shared(frozenset(model.__pydantic_fields_set__)))
    for value in model.__dict__.values():
        _visit(value)


def _visit(value: Any) -> None:
    if isinstance(value, BaseModel):
        share_fields_sets(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _visit(item)
    elif isinstance(value, dict):
        for item in value.values():
            _visit(item)
