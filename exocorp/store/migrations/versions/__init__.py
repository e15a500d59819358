"""Revisions, one per file."""
