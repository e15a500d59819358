"""exocorp.testing"""
