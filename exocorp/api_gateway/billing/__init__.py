"""The billing API group."""
