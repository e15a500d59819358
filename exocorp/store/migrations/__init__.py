"""Alembic migrations for the platform database (a package so that installs ship them)."""
