"""Exocorp platform: run fleets of autonomous AI-agent companies on Kubernetes."""

__version__ = "0.1.0"
