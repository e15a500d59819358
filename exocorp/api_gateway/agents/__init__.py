"""The agents API group."""
