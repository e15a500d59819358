"""The platform's one percentile rule and one RFC 3339 parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exocorp.model import parse_rfc3339, parse_rfc3339_or_none
from exocorp.stats import percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == \
        (50.0, 95.0, 99.0)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_rfc3339_parsing_gives_utc_and_refuses_the_rest() -> None:
    moment = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_rfc3339("2026-05-01T10:00:00Z") == moment
    assert parse_rfc3339("2026-05-01t12:00:00+02:00") == moment
    assert parse_rfc3339("2026-05-01T12:00:00+02:00").tzinfo is UTC
    with pytest.raises(ValueError, match="has no time zone"):
        parse_rfc3339("2026-05-01T10:00:00")
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        parse_rfc3339("yesterday")
    assert [parse_rfc3339_or_none(v) for v in (None, "", "yesterday")] == [None, None, None]
