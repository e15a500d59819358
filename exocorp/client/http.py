"""Calls to the gateway and how their failures map to exit codes (docs/cli.md)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

OK = 0
REFUSED = 1
"""The API refused the request (400, 422 ...): fix the input."""
USAGE = 2
"""Wrong command line (argparse's own code)."""
UNAUTHENTICATED = 3
"""Not logged in, session expired, or the role does not allow it (401, 403)."""
NOT_FOUND = 4
"""No such exocorp (or not yours)."""
CONFLICT = 5
"""Not possible in the current state (409): e.g. wrong phase, a rollout runs."""
UNAVAILABLE = 6
"""The server cannot be reached or failed (5xx, network)."""


class ClientError(Exception):
    """One line for the user, and the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _exit_code(status: int) -> int:
    if status in (401, 403):
        return UNAUTHENTICATED
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return CONFLICT
    if status >= 500:
        return UNAVAILABLE
    return REFUSED


def _problem_line(status: int, body: bytes) -> str:
    try:
        problem = json.loads(body)
        line = f"{problem.get('detail') or problem.get('title')} ({status} {problem.get('code')})"
        fields = [f"{e['field']}: {e['message']}" for e in problem.get("errors") or []]
        return line + ("; " + "; ".join(fields) if fields else "")
    except (ValueError, AttributeError, KeyError, TypeError):
        return f"HTTP {status}"


class Api:
    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None,
                 headers: dict[str, str] | None = None) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        # Only http(s) servers reach here (checked in open()).
        return urllib.request.Request(self.server + path, data=data,  # noqa: S310
                                      method=method, headers=all_headers)

    def open(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None,
             timeout: float | None = None) -> Any:
        """The raw response (caller closes it); ClientError for any failure."""
        if not self.server.startswith(("http://", "https://")):
            raise ClientError(f"the server must be an http:// or https:// URL, not "
                              f"{self.server!r}", USAGE)
        request = self._request(method, path, body, headers)
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)  # noqa: S310
        except urllib.error.HTTPError as error:
            raise ClientError(_problem_line(error.code, error.read()),
                              _exit_code(error.code)) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ClientError(f"cannot reach {self.server}: {reason}", UNAVAILABLE) from None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        with self.open(method, path, body) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def events(self, path: str) -> Iterator[tuple[str, str]]:
        """Server-sent events of ``path`` as (event, data), until the server ends the stream."""
        with self.open("GET", path, headers={"Accept": "text/event-stream"},
                       timeout=60) as response:
            event, data = "message", list[str]()
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if data:
                        yield event, "\n".join(data)
                    event, data = "message", []
                elif line.startswith(":"):
                    continue  # keepalive comment
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)


def quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")
