"""The members API group: invitations, roles, leaving."""
