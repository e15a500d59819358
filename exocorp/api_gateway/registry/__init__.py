"""The registry API group."""
