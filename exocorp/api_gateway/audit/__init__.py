"""The audit API group."""
