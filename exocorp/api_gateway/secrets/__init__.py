"""The secrets API group."""
