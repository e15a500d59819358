"""exocorp.api_gateway"""
