"""The dashboard API group."""
