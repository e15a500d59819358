"""exocorp.operator"""
