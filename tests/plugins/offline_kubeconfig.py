"""A kubeconfig for a client that is built but never reaches an API server."""

from __future__ import annotations

import json
from pathlib import Path


def offline_kubeconfig(directory: Path) -> Path:
    """Writes one naming https://127.0.0.1:6443 (skip TLS verification, a token) into
    ``directory``; returns its path."""
    path = directory / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))
    return path
