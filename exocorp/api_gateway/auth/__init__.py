"""The auth API group."""
