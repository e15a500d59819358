"""Billing settings from the environment, and the API bodies' validation."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from exocorp.billing.api import PriceBookBody, PriceBookUpdateBody, TopUpBody
from exocorp.billing.settings import BillingSettings, DefaultPriceBook, SettingsError

pytestmark = pytest.mark.unit


def test_defaults_without_environment() -> None:
    s = BillingSettings.from_env({})
    assert s.namespace == "exocorp-system"
    assert s.lease_name == "exocorp-billing-metering"
    assert s.identity.endswith(f"_{os.getpid()}")
    assert s.default_price_book == DefaultPriceBook()
    assert s.default_price_book is not None
    assert dict(s.default_price_book.rates) == {"*": 1}


def test_environment_and_overrides() -> None:
    s = BillingSettings.from_env({
        "EXOCORP_NAMESPACE": "platform",
        "EXOCORP_METERING_INTERVAL_SECONDS": "5",
        "EXOCORP_METERING_LEASE_NAME": "meter",
        "EXOCORP_METERING_LEASE_DURATION_SECONDS": "20",
        "EXOCORP_METERING_RENEW_DEADLINE_SECONDS": "12",
        "EXOCORP_METERING_RETRY_PERIOD_SECONDS": "3",
        "POD_NAME": "gateway-7f9",
        "EXOCORP_DEFAULT_PRICE_BOOK": '{"name": "basic", "currency": "eur", '
                                      '"rates": {"*": 2, "agents": 5}}',
    }, interval_seconds=1.0)
    assert (s.namespace, s.lease_name, s.interval_seconds) == ("platform", "meter", 1.0)
    assert (s.lease_duration_seconds, s.renew_deadline_seconds, s.retry_period_seconds) == (
        20, 12, 3)
    assert s.identity == f"gateway-7f9_{os.getpid()}"
    assert s.default_price_book == DefaultPriceBook(name="basic", currency="EUR",
                                                    rates={"*": 2, "agents": 5})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXOCORP_METERING_INTERVAL_SECONDS": "soon"}, "EXOCORP_METERING_INTERVAL_SECONDS"),
        ({"EXOCORP_METERING_INTERVAL_SECONDS": "0"}, "positive"),
        ({"EXOCORP_METERING_RENEW_DEADLINE_SECONDS": "30"}, "renew deadline"),
        ({"EXOCORP_METERING_RETRY_PERIOD_SECONDS": "11"}, "retry period"),
        ({"EXOCORP_DEFAULT_PRICE_BOOK": "{"}, "not JSON"),
        ({"EXOCORP_DEFAULT_PRICE_BOOK": "[]"}, "rates"),
        ({"EXOCORP_DEFAULT_PRICE_BOOK": '{"rates": {"*": -1}}'}, "non-negative"),
        ({"EXOCORP_DEFAULT_PRICE_BOOK": '{"rates": {"*": 1.5}}'}, "non-negative"),
        ({"EXOCORP_DEFAULT_PRICE_BOOK": '{"rates": {}, "currency": "dollars"}'}, "ISO 4217"),
        ({"EXOCORP_DEFAULT_PRICE_BOOK": '{"rates": {}, "colour": "red"}'}, "unknown keys"),
    ],
)
def test_malformed_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        BillingSettings.from_env(env)


def test_price_book_body_validation() -> None:
    body = PriceBookBody.model_validate(
        {"name": "pro", "currency": "USD", "rates": {"*": 1, "agents": 4}, "isDefault": True})
    assert body.is_default
    bad = [
        {"name": "pro", "currency": "USD", "rates": {}},
        {"name": "pro", "currency": "USD", "rates": {"Agents!": 1}},
        {"name": "pro", "currency": "USD", "rates": {"agents": -1}},
        {"name": "pro", "currency": "USD", "rates": {"agents": "1"}},
        {"name": "pro", "currency": "USD", "rates": {"agents": 1.0}},
        {"name": "", "currency": "USD", "rates": {"*": 1}},
        {"name": "pro", "currency": "US", "rates": {"*": 1}},
        {"name": "pro", "currency": "USD", "rates": {"*": 1}, "extra": 1},
    ]
    for data in bad:
        with pytest.raises(ValidationError):
            PriceBookBody.model_validate(data)
    with pytest.raises(ValidationError):
        PriceBookUpdateBody.model_validate({"rates": {"*": True}})


def test_top_up_body_validation() -> None:
    assert TopUpBody.model_validate({"amount": 500, "reference": "pay-1"}).amount == 500
    for data in ({"amount": 0, "reference": "x"}, {"amount": -5, "reference": "x"},
                 {"amount": "5", "reference": "x"}, {"amount": 5}, {"amount": 5, "reference": ""},
                 {"amount": 10**13, "reference": "x"}):
        with pytest.raises(ValidationError):
            TopUpBody.model_validate(data)


def test_the_standalone_metering_command_explains_itself() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "exocorp.billing", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "--database-url" in result.stdout
    assert "--lease-name" in result.stdout
