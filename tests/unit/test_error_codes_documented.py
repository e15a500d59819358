"""Every problem `code` the gateway can answer with is in docs/api.md's table of codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exocorp.api_gateway import errors
from exocorp.lifecycle import ErrorCode

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# code="x" (forbidden, conflict, bad_request ...), Problem(409, "x", ...), and codes chosen in
# an expression (code = "x" if ... else "y").
_IN_SOURCE = re.compile(r'code=\s*"([a-z_]+)"|Problem\(\d{3}, "([a-z_]+)"'
                        r'|code = "([a-z_]+)" if .* else "([a-z_]+)"')


def _documented() -> set[str]:
    text = (ROOT / "docs" / "api.md").read_text()
    table = text[text.index("### Error codes"):text.index("## Authentication")]
    return {code for line in table.splitlines() if line.startswith("| 4") or
            line.startswith("| 5") for code in re.findall(r"`([a-z_]+)`", line.split("|")[2])}


def _answered() -> set[str]:
    codes = {code.value for code in ErrorCode}
    codes |= set(errors._HTTP_CODES.values())
    for path in (ROOT / "exocorp" / "api_gateway").rglob("*.py"):
        for match in _IN_SOURCE.finditer(path.read_text()):
            codes |= {group for group in match.groups() if group}
    return codes


def test_every_code_is_documented() -> None:
    answered = _answered()
    assert len(answered) > 40  # the sources really were read
    assert sorted(answered - _documented()) == []


def test_the_table_names_no_code_that_does_not_exist() -> None:
    assert sorted(_documented() - _answered()) == []
