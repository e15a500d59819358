"""JSON merge patches (RFC 7386): computing the smallest one between two documents, applying one.

Lifecycle plans express spec changes this way because it is what `kubectl patch --type merge`
and the API server understand, and because a patch names only what an action changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that turns `old` into `new`: removed keys become null, lists are replaced."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch_diff(before, value)
            if nested:
                patch[key] = nested
        elif before is _MISSING or before != value:
            patch[key] = value
    return {key: patch[key] for key in sorted(patch)}


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """`target` with `patch` applied, as RFC 7386 defines it; neither argument is modified."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


_MISSING: Any = object()
