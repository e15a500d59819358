"""Where `exocorp login` keeps the server and the session token: one JSON file readable by its
owner only (mode 0600, in a 0700 directory), as kubectl keeps its kubeconfig credentials."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str
    email: str


def path() -> Path:
    explicit = os.environ.get("EXOCORP_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "exocorp" / "credentials.json"


def save(credentials: Credentials) -> Path:
    target = path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    # Created 0600 from the start (never world-readable for a moment), then renamed over.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"server": credentials.server, "token": credentials.token,
                   "email": credentials.email}, out)
    os.chmod(temporary, 0o600)
    os.replace(temporary, target)
    return target


def load() -> Credentials | None:
    try:
        data = json.loads(path().read_text())
        return Credentials(server=data["server"], token=data["token"], email=data["email"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def forget() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
