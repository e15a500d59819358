"""The admin API group."""
