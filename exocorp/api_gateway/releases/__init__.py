"""The releases API group."""
