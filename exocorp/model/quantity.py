"""Kubernetes resource quantities ("250m", "1.5Gi", "2", "1e3") as numbers: one parser for the
operator's quota arithmetic and the admin API's capacity figures."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

_SUFFIXES: Mapping[str, Decimal] = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal("1e3"),
    "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes resource quantity ("250m", "1.5Gi", "2", "1e3") as a number; ValueError for
    anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    match = _QUANTITY.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = Decimal(match.group(1)), match.group(2)
    if not suffix:
        return number
    if suffix in _SUFFIXES:
        return number * _SUFFIXES[suffix]
    try:
        return number.scaleb(int(suffix[1:]))
    except ArithmeticError:  # an exponent beyond what Decimal holds
        raise ValueError(f"quantity out of range: {value!r}") from None


def format_cpu(millicores: int) -> str:
    """Millicores as a quantity: whole cores as "2", the rest as "2500m"."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


_BINARY = (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def format_bytes(count: int) -> str:
    """Bytes as a quantity in the largest binary unit that divides them: "16Gi", "1536Mi"."""
    for suffix, unit in _BINARY:
        if count and count % unit == 0:
            return f"{count // unit}{suffix}"
    return str(count)
