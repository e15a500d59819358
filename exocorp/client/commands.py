"""The client commands: each takes the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from exocorp.client import credentials
from exocorp.client.http import OK, UNAUTHENTICATED, USAGE, Api, ClientError, quote

DEFAULT_SERVER = "http://127.0.0.1:8000"
ACTIONS = ("provision", "update", "restart", "pause", "resume", "stop", "rollback")
_COMPANY = "/api/registry/companies/"
# The gateway's `retry:` for its event streams (2,000 ms).
STREAM_RETRY_SECONDS = 2.0


def _api() -> Api:
    saved = credentials.load()
    if saved is None:
        raise ClientError("not logged in: run `exocorp login --server URL --email ADDRESS`",
                          UNAUTHENTICATED)
    return Api(saved.server, saved.token)


# -- output --------------------------------------------------------------------------------------


def _columns(company: dict[str, Any], wide: bool) -> list[str]:
    release = company.get("release") or {}
    row = [company["id"], company.get("displayName", ""), company.get("phase", ""),
           release.get("version", "-")]
    if wide:
        revision = company.get("currentRevision") or {}
        row += [release.get("channel", "-"), company.get("role", ""),
                "yes" if company.get("ready") else "no",
                str(revision.get("number", "-")), company.get("pauseReason") or "-"]
    return row


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in [header, *rows])


def _print(data: Any, output: str, companies: list[dict[str, Any]]) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    else:
        header = ["ID", "NAME", "PHASE", "VERSION"]
        if output == "wide":
            header += ["CHANNEL", "ROLE", "READY", "REVISION", "PAUSE REASON"]
        print(_table([_columns(c, output == "wide") for c in companies], header))


# -- commands ------------------------------------------------------------------------------------


def _secret(path: str | None, prompt: str, what: str = "password") -> str:
    """From the file at ``path``, else a line of standard input, else typed at ``prompt``."""
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as error:
            raise ClientError(f"cannot read the {what} file: {error.strerror}: {path}",
                              USAGE) from None
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    return getpass.getpass(prompt)


def login(args: argparse.Namespace) -> int:
    api = Api(args.server)
    if args.recovery_kit_file:
        secret = {"recoveryKit": _secret(args.recovery_kit_file, "", "recovery kit")}
    else:
        secret = {"password": _secret(args.password_file, f"password for {args.email}: ")}
    with api.open("POST", "/api/auth/login", {"email": args.email, **secret}) as response:
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        body = json.loads(response.read())
    token = next((m.value for name, m in jar.items() if name.endswith("exocorp_session")), None)
    if token is None:
        raise ClientError("the server answered the login without a session", UNAUTHENTICATED)
    where = credentials.save(credentials.Credentials(server=api.server, token=token,
                                                     email=body["user"]["email"]))
    print(f"logged in to {api.server} as {body['user']['email']} (session saved in {where}, "
          "mode 0600)")
    if body.get("recoveryKit"):
        print(f"new recovery kit (the one you used no longer works; keep this one offline): "
              f"{body['recoveryKit']}")
    if body.get("passwordChangeRequired"):
        print("this session was opened with the recovery kit: set a new password with "
              "`exocorp password` before anything else")
    return OK


def password(args: argparse.Namespace) -> int:
    """Set a new password; the current one is asked for unless this session was opened with
    the recovery kit (then it may be what was lost)."""
    api = _api()
    body: dict[str, str] = {}
    if not api.call("GET", "/api/auth/me").get("passwordChangeRequired"):
        body["currentPassword"] = _secret(args.current_password_file, "current password: ")
    body["newPassword"] = _secret(args.password_file, "new password (10 characters or more): ")
    api.call("POST", "/api/auth/password", body)
    print("password changed; every other session and agent token of yours has ended")
    return OK


def logout(args: argparse.Namespace) -> int:
    if args.everywhere:
        # Not best effort: the person must know whether the other sessions really ended.
        _api().call("POST", "/api/auth/logout-everywhere")
        credentials.forget()
        print("logged out everywhere: every session of yours has ended and every agent you "
              "approved lost its access")
        return OK
    saved = credentials.load()
    if saved is not None:
        try:
            Api(saved.server, saved.token).call("POST", "/api/auth/logout")
        except ClientError as error:  # the local copy goes anyway
            print(f"exocorp: the server did not end the session: {error}", file=sys.stderr)
    credentials.forget()
    print("logged out")
    return OK


def ls(args: argparse.Namespace) -> int:
    data = _api().call("GET", "/api/registry/my-companies")
    _print(data, args.output, data["companies"])
    return OK


def get(args: argparse.Namespace) -> int:
    data = _api().call("GET", _COMPANY + quote(args.id))
    _print(data, args.output, [data])
    return OK


def manifest(args: argparse.Namespace) -> int:
    """The objects the operator applies for an exocorp (owner only): a YAML stream ready to
    read or diff, or the whole JSON answer (source, release, objects, notes)."""
    api, path = _api(), _COMPANY + quote(args.id) + "/manifest"
    if args.output == "json":
        print(json.dumps(api.call("GET", path), indent=2))
        return OK
    with api.open("GET", path + "?format=yaml",
                  headers={"Accept": "application/yaml"}) as response:
        print(response.read().decode(), end="")
    return OK


def act(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if getattr(args, "reason", None):
        body["reason"] = args.reason
    if args.command == "update":
        body |= {k: v for k, v in (("version", args.version), ("channel", args.channel)) if v}
    if args.command == "rollback" and args.to:
        body["revision"] = int(args.to) if args.to.isdigit() else args.to
    answer = _api().call("POST", f"{_COMPANY}{quote(args.id)}/{args.command}", body)
    if args.output in ("json", "yaml"):
        _print(answer, args.output, [])
    else:
        print(f"{args.command} of {args.id} accepted: phase {answer['phase']}")
    return OK


def destroy(args: argparse.Namespace) -> int:
    confirm = args.confirm
    if confirm is None:
        if not sys.stdin.isatty():
            raise ClientError("destroy is irreversible: pass --confirm SLUG (or run it in a "
                              "terminal to be asked)", USAGE)
        confirm = input(f"destroy {args.id}: its runtime and data go for good. Type its slug "
                        "to confirm: ").strip()
    body = {"confirm": confirm, **({"reason": args.reason} if args.reason else {})}
    answer = _api().call("DELETE", _COMPANY + quote(args.id), body)
    print(f"destroy of {args.id} accepted: phase {answer['phase']}")
    return OK


def watch(args: argparse.Namespace) -> int:
    """Follow the live stream; with --until, exit 0 once that phase is reached. A stream the
    server ends (a restart, a proxy's idle cut) is reopened after the server's retry delay, so
    --until never reports a phase it did not see."""
    api = _api()
    while True:
        for event, data in api.events(f"{_COMPANY}{quote(args.id)}/events"):
            if event == "deleted":
                print(f"{args.id}: deleted", flush=True)
                return OK
            if event != "company":
                continue
            company = json.loads(data)
            if args.output in ("json", "yaml"):
                _print(company, args.output, [])
            else:
                revision = (company.get("currentRevision") or {}).get("number", "-")
                version = (company.get("release") or {}).get("version", "-")
                rolling = ", rollout in progress" if company.get("rolloutInProgress") else ""
                print(f"{company['id']}: {company['phase']} (version {version}, revision "
                      f"{revision}{rolling})", flush=True)
            if args.until and company.get("phase") == args.until:
                return OK
        time.sleep(STREAM_RETRY_SECONDS)


def members(args: argparse.Namespace) -> int:
    data = _api().call("GET", f"{_COMPANY}{quote(args.id)}/members")
    if args.output in ("json", "yaml"):
        _print(data, args.output, [])
        return OK
    rows = [[m["email"], m["role"], m["userId"], m["since"]] for m in data["members"]]
    rows += [[i["email"], f"{i['role']} (invited)", i["id"], i["createdAt"]]
             for i in data["invitations"]]
    print(_table(rows, ["EMAIL", "ROLE", "ID", "SINCE"]))
    return OK


def invite(args: argparse.Namespace) -> int:
    sent = _api().call("POST", f"{_COMPANY}{quote(args.id)}/invitations",
                       {"email": args.email, "role": args.role})
    print(f"invited {sent['email']} to {args.id} as {sent['role']} (invitation {sent['id']})")
    return OK


def invitations(args: argparse.Namespace) -> int:
    mine = _api().call("GET", "/api/auth/me")["invitations"]
    print(_table([[i["id"], i["exocorpId"], i["role"], i["invitedBy"]] for i in mine],
                 ["INVITATION", "EXOCORP", "ROLE", "INVITED BY"]))
    return OK


def answer(args: argparse.Namespace) -> int:
    verb = "accept" if args.command == "accept" else "decline"
    _api().call("POST", f"/api/registry/invitations/{quote(args.invitation)}/{verb}")
    print(f"invitation {args.invitation} {verb}ed")
    return OK


def set_role(args: argparse.Namespace) -> int:
    _api().call("PATCH", f"{_COMPANY}{quote(args.id)}/members/{quote(args.user)}",
                {"role": args.role})
    print(f"{args.user} is now {args.role} of {args.id}")
    return OK


def remove_member(args: argparse.Namespace) -> int:
    api = _api()
    user = args.user if args.command == "remove-member" else api.call(
        "GET", "/api/auth/me")["user"]["id"]
    api.call("DELETE", f"{_COMPANY}{quote(args.id)}/members/{quote(user)}")
    print(f"left {args.id}" if args.command == "leave" else f"removed {user} from {args.id}")
    return OK


# -- admin (platform owners) --------------------------------------------------------------------

_BOUNDS = (("maxExocorps", "EXOCORPS"), ("maxCpu", "CPU"), ("maxMemory", "MEMORY"),
           ("maxStorage", "STORAGE"))


def _bound(setting: dict[str, Any], key: str) -> str:
    value = setting.get(key)
    return "unlimited" if value is None else str(value)


def limits(args: argparse.Namespace) -> int:
    """The default and platform limits, and what the whole fleet uses of each."""
    data = _api().call("GET", "/api/admin/limits")
    if args.output in ("json", "yaml"):
        _print(data, args.output, [])
        return OK
    rows = [[scope, *(_bound(data[scope], key) for key, _ in _BOUNDS)]
            for scope in ("default", "platform")]
    rows.append(["in use", str(data["exocorps"]), data["cpu"], data["memory"], data["storage"]])
    print(_table(rows, ["SCOPE", *(title for _, title in _BOUNDS)]))
    return OK


def set_limits(args: argparse.Namespace) -> int:
    """Every bound of a scope at once (the API's PUT): one not given becomes unlimited."""
    body = {"maxExocorps": args.max_exocorps, "maxCpu": args.max_cpu,
            "maxMemory": args.max_memory, "maxStorage": args.max_storage}
    saved = _api().call("PUT", f"/api/admin/limits/{quote(args.scope)}", body)
    bounds = [f"{title.lower()} {saved[key]}" for key, title in _BOUNDS
              if saved.get(key) is not None]
    print(f"limits of {args.scope}: " + (", ".join(bounds) if bounds else "unlimited"))
    return OK


def set_disabled(args: argparse.Namespace) -> int:
    verb = args.admin_command  # "disable" or "enable"
    user = _api().call("POST", f"/api/admin/users/{quote(args.user)}/{verb}")
    print(f"{user['email']} ({user['id']}) is disabled: every session of theirs has ended"
          if verb == "disable" else f"{user['email']} ({user['id']}) may log in again")
    return OK


Handler = Callable[[argparse.Namespace], int]


def run(handler: Handler, args: argparse.Namespace) -> int:
    """One line on stderr and the documented exit code for every failure."""
    try:
        return handler(args)
    except ClientError as error:
        print(f"exocorp {args.command}: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130


def env_server() -> str:
    return os.environ.get("EXOCORP_SERVER", DEFAULT_SERVER)
