"""The runtime API group."""
