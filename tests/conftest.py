"""Shared pytest setup: each tier's fixtures live in a plugin module of their own."""

pytest_plugins = [
    "tests.plugins.canary",  # first: the others import it
    "tests.plugins.cluster",
    "tests.plugins.database",
    "tests.plugins.platform",
    "tests.plugins.monitoring",
    "tests.plugins.browser",
]
