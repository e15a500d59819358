"""exocorp: run the platform (operator, gateway, a local dev platform) and drive exocorps
through the REST API (login, ls, get, lifecycle actions, watch). Exit codes: docs/cli.md."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

from exocorp import LOG_FORMAT, __version__

if TYPE_CHECKING:
    from exocorp.api_gateway.settings import GatewaySettings


def _state_dir(name: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(os.environ.get("EXOCORP_STATE", base + "/exocorp")) / "clusters" / name


def _kubectl_hint(kubeconfig: Path) -> str:
    from exocorp.testing import binaries

    kubectl = binaries.cache_bin_dir() / "kubectl"
    return (
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  export PATH={kubectl.parent}:$PATH   # kubectl v{binaries.K8S_VERSION}\n"
        "  kubectl get nodes"
    )


def cmd_cluster_build(args: argparse.Namespace) -> int:
    from exocorp.testing import binaries

    binaries.build()
    print(binaries.cache_bin_dir())
    return 0


def cmd_cluster_up(args: argparse.Namespace) -> int:
    from exocorp.testing.controlplane import ControlPlane, ControlPlaneState

    workdir = _state_dir(args.name)
    state = ControlPlaneState.load(workdir)
    if state and any(p.alive() for p in state.managed()):
        print(f"cluster {args.name!r} is already running; to use it:\n"
              f"{_kubectl_hint(Path(state.kubeconfig))}")
        return 0
    plane = ControlPlane(workdir, nodes=args.nodes)
    plane.start()  # the processes run in their own sessions and outlive this command
    print(f"cluster {args.name!r} is up. Use it with:\n{_kubectl_hint(plane.kubeconfig)}\n"
          f"Stop it with: exocorp cluster down{_name_flag(args.name)}")
    return 0


def _name_flag(name: str) -> str:
    return "" if name == "default" else f" --name {name}"


def cmd_cluster_down(args: argparse.Namespace) -> int:
    from exocorp.testing.controlplane import ControlPlaneState

    workdir = _state_dir(args.name)
    state = ControlPlaneState.load(workdir)
    if state is None:
        print(f"no cluster {args.name!r} (nothing in {workdir})")
    else:
        for proc in reversed(state.managed()):
            if proc.alive():
                print(f"stopping {proc.name} (pid {proc.pid})")
            proc.stop()
        state.processes = []
        state.save()
    if args.purge and workdir.exists():
        shutil.rmtree(workdir)
        print(f"removed {workdir}")
    return 0


def cmd_cluster_status(args: argparse.Namespace) -> int:
    from exocorp.testing.controlplane import ControlPlaneState

    state = ControlPlaneState.load(_state_dir(args.name))
    if state is None or not state.processes:
        print(f"cluster {args.name!r}: not running")
        return 1
    healthy = True
    for proc in state.managed():
        alive = proc.alive()
        healthy &= alive
        print(f"  {proc.name:<24} pid {proc.pid:<8} {'running' if alive else 'DEAD'}"
              f"   log {proc.log}")
    print(f"cluster {args.name!r}: {'running' if healthy else 'DEGRADED'}; server {state.server}")
    print(_kubectl_hint(Path(state.kubeconfig)))
    return 0 if healthy else 1


def cmd_dev(args: argparse.Namespace) -> int:
    """Run the local platform in the foreground until Ctrl-C, then stop all it started."""
    from exocorp.testing import dev

    return dev.run(_state_dir("dev"), nodes=args.nodes, port=args.port,
                   kubectl_hint=_kubectl_hint)


def cmd_crds(args: argparse.Namespace) -> int:
    from exocorp.model import crd

    if args.write:
        for path in crd.write_crds(Path(args.directory)):
            print(f"wrote {path}")
    else:
        print(crd.render_crds(), end="")
    return 0


def _configure_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    # kopf logs every watch event at DEBUG; keep it at INFO unless asked.
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLogger().level))
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EXOCORP_{name}", default)


def _kubeconfig_problem(kubeconfig: str | None) -> str | None:
    """Why the services cannot reach a cluster, checked before they start (they would retry
    for ever otherwise)."""
    if kubeconfig:
        path = Path(kubeconfig)
        if not path.is_file():
            return f"--kubeconfig {kubeconfig}: no such file"
        if not os.access(path, os.R_OK):
            return f"--kubeconfig {kubeconfig}: not readable"
        return None
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return ("no cluster: pass --kubeconfig (or set $KUBECONFIG), or run inside a "
                "Kubernetes pod")
    return None


def cmd_operator(args: argparse.Namespace) -> int:
    from exocorp import shards
    from exocorp.operator import main as operator_main
    from exocorp.operator.settings import OperatorSettings

    problem = _kubeconfig_problem(args.kubeconfig)
    if problem:
        print(f"exocorp operator: {problem}", file=sys.stderr)
        return 2
    if args.shard:
        try:
            shards.parse(args.shard)
        except ValueError as err:
            print(f"exocorp operator: --shard: {err}", file=sys.stderr)
            return 2

    _configure_logging(args.log_level)
    settings = OperatorSettings(
        namespace=args.namespace, portal_base_domain=args.portal_base_domain,
        app_base_domain=args.app_base_domain, ingress_class=args.ingress_class,
        tls_issuer=args.tls_issuer, ingress_namespace=args.ingress_namespace,
        storage_class=args.storage_class, max_concurrent_rollouts=args.max_concurrent_rollouts,
        resync_seconds=args.resync_seconds, workers=args.workers,
        secret_refresh_seconds=args.secret_refresh_seconds,
        shard="" if args.shard == shards.DEFAULT else args.shard,
    )
    operator_main.run(settings, kubeconfig=args.kubeconfig, metrics_host=args.metrics_host,
                      metrics_port=args.metrics_port,
                      peering=args.peering or None, priority=args.priority)
    return 0


def _add_operator(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from exocorp.operator.settings import OperatorSettings

    d = OperatorSettings()
    op = sub.add_parser("operator", help="run the operator (reconciles Exocorp resources)")
    op.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                    help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    op.add_argument("--namespace", default=_env("NAMESPACE", d.namespace),
                    help="platform namespace ($EXOCORP_NAMESPACE)")
    op.add_argument("--metrics-host", default=_env("METRICS_HOST", "127.0.0.1"),
                    help="address of /metrics, /healthz and /readyz (like the gateway's --host)")
    op.add_argument("--metrics-port", type=_port, default=int(_env("METRICS_PORT", "8080")),
                    help="port serving /metrics and /healthz")
    op.add_argument("--peering", default=_env("PEERING", ""),
                    help="kopf peering name: one active replica among peers ('' = standalone)")
    op.add_argument("--priority", type=int, default=int(_env("PRIORITY", "0")),
                    help="peering priority (the highest active replica acts)")
    op.add_argument("--shard", default=_env("SHARD", d.shard),
                    help="reconcile only Exocorps labelled exocorp.io/shard=SHARD ('' = the "
                         "default shard: Exocorps without the label); give each shard its own "
                         "--peering")
    op.add_argument("--portal-base-domain", default=_env("PORTAL_BASE_DOMAIN",
                                                         d.portal_base_domain))
    op.add_argument("--app-base-domain", default=_env("APP_BASE_DOMAIN", d.app_base_domain))
    op.add_argument("--ingress-class", default=_env("INGRESS_CLASS", d.ingress_class))
    op.add_argument("--ingress-namespace", default=_env("INGRESS_NAMESPACE",
                                                        d.ingress_namespace))
    op.add_argument("--tls-issuer", default=_env("TLS_ISSUER", d.tls_issuer),
                    help="cert-manager ClusterIssuer for the domains ('' = none)")
    op.add_argument("--storage-class", default=_env("STORAGE_CLASS", d.storage_class))
    op.add_argument("--max-concurrent-rollouts", type=int,
                    default=int(_env("MAX_CONCURRENT_ROLLOUTS", str(d.max_concurrent_rollouts))))
    op.add_argument("--resync-seconds", type=float,
                    default=float(_env("RESYNC_SECONDS", str(d.resync_seconds))))
    op.add_argument("--workers", type=int, default=int(_env("WORKERS", str(d.workers))))
    op.add_argument("--secret-refresh-seconds", type=float,
                    default=float(_env("SECRET_REFRESH_SECONDS", str(d.secret_refresh_seconds))),
                    help="re-apply each exocorp's credential copy at least this often (it is "
                         "never read back)")
    op.add_argument("--log-level", default=_env("LOG_LEVEL", "info"),
                    choices=["debug", "info", "warning", "error"])
    op.set_defaults(func=cmd_operator)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(f"EXOCORP_{name}")
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def cmd_gateway(args: argparse.Namespace) -> int:
    import asyncio

    _configure_logging(args.log_level)
    problem = _kubeconfig_problem(args.kubeconfig)
    if problem:
        print(f"exocorp gateway: {problem}", file=sys.stderr)
        return 2
    try:
        settings = _gateway_settings(args)
    except ValueError as error:  # a setting out of range, or not an IP network
        print(f"exocorp gateway: {error}", file=sys.stderr)
        return 2
    if settings.processes > 1 and args.process_index is None and not args.prepare_only:
        _supervise_gateway(args, settings)
    from exocorp.api_gateway import main as gateway_main  # not in the supervisor: no app there

    try:
        if args.prepare_only:
            asyncio.run(gateway_main.prepare(settings))
        else:
            gateway_main.run(settings, kubeconfig=args.kubeconfig, process=args.process_index)
    except gateway_main.StartupError as error:
        print(f"exocorp gateway: {error}", file=sys.stderr)
        return 2
    return 0


def _supervise_gateway(args: argparse.Namespace, settings: GatewaySettings) -> NoReturn:
    """``--processes N``: with the settings checked, become the supervisor of N copies of this
    command line (``exocorp.api_gateway.supervisor``). exec, not a call: this process keeps its
    PID (the container's signals reach it) but drops the gateway's modules it has imported
    (~80 MiB), so the supervisor costs ~20 MiB."""
    own = [sys.executable, "-m", "exocorp.cli", *args.argv]
    os.execv(sys.executable, [sys.executable, "-m",  # noqa: S606 (our interpreter, no shell)
                              "exocorp.api_gateway.supervisor", "--log-level", args.log_level,
                              str(settings.processes), *own])


def _gateway_settings(args: argparse.Namespace) -> GatewaySettings:
    from datetime import timedelta

    from exocorp.api_gateway.settings import GatewaySettings

    return GatewaySettings(
        host=args.host, port=args.port, metrics_port=args.metrics_port,
        processes=args.processes,
        database_url=args.database_url,
        platform_namespace=args.namespace, cookie_secure=args.cookie_secure,
        session_idle_timeout=timedelta(minutes=args.session_idle_minutes),
        session_absolute_timeout=timedelta(hours=args.session_absolute_hours),
        auth_cache_seconds=args.auth_cache_seconds, access_log=args.access_log,
        signup_credit=args.signup_credit, signup_requires_owner=args.signup_requires_owner,
        min_credit_hours=args.min_credit_hours,
        suspension_grace=timedelta(hours=args.suspension_grace_hours),
        signup_max_per_client=args.signup_max_per_client,
        login_max_failures=args.login_max_failures,
        login_max_failures_per_ip=args.login_max_failures_per_client,
        trusted_proxies=tuple(p for p in args.trusted_proxies.split(",") if p.strip()),
        hash_concurrency=args.hash_concurrency, hash_queue=args.hash_queue,
        memory_limit_bytes=args.memory_limit_bytes,
        portal_base_domain=args.portal_base_domain, app_base_domain=args.app_base_domain,
        public_base_url=args.public_base_url, max_body_bytes=args.max_body_bytes,
        idempotency_stale_after=timedelta(seconds=args.idempotency_stale_seconds),
        agent_token_ttl=timedelta(days=args.agent_token_days), shards=args.shards,
        ui_dist_dir=Path(args.ui_dist_dir) if args.ui_dist_dir else None,
        stream_keepalive_seconds=args.stream_keepalive_seconds,
        max_streams_per_session=args.max_streams_per_session,
    )


def cmd_platform_owner(args: argparse.Namespace) -> int:
    import asyncio

    from exocorp.api_gateway import main as gateway_main
    from exocorp.store import open_database, upgrade_to_head
    from exocorp.store.errors import Conflict

    try:
        password = Path(args.password_file).read_text().strip()
    except OSError as error:
        print(f"exocorp platform-owner: cannot read --password-file {args.password_file}: "
              f"{error.strerror}", file=sys.stderr)
        return 2
    if len(password) < 10:
        print("the password must have at least 10 characters", file=sys.stderr)
        return 2

    async def bootstrap() -> int:
        database = open_database(args.database_url)
        try:
            await upgrade_to_head(database.engine)
            created = await gateway_main.bootstrap_platform_owner(
                database, args.email, password, only_if_none=False,
                promote_existing=args.promote_existing)
        except Conflict:
            print(f"exocorp platform-owner: {args.email} is already registered by an account "
                  "whose password you may not hold; if it is yours, add --promote-existing "
                  "(resets its password and signs out its sessions and agents)", file=sys.stderr)
            return 2
        finally:
            await database.dispose()
        assert created is not None
        done = ("promoted the existing account; password reset, every session and agent token "
                "revoked" if created.promoted else "created platform owner")
        print(f"{args.email}: {done}; recovery kit (shown once, keep it offline): "
              f"{created.recovery_kit.reveal()}")
        return 0

    return asyncio.run(bootstrap())


def _shard_list(value: str) -> tuple[str, ...]:
    from exocorp import shards

    try:
        return shards.parse(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_gateway(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from exocorp.api_gateway.settings import GatewaySettings
    from exocorp.store import database_url_from_env

    d = GatewaySettings()
    gw = sub.add_parser("gateway", help="run the REST gateway (API, /healthz, /readyz; /metrics "
                                        "on --metrics-port)")
    gw.add_argument("--host", default=_env("HOST", d.host), help="address to listen on")
    gw.add_argument("--port", type=_port, default=int(_env("PORT", str(d.port))),
                    help="public port: the API, the dashboard, /healthz and /readyz")
    gw.add_argument("--metrics-port", type=_port,
                    default=int(_env("METRICS_PORT", str(d.metrics_port))),
                    help="port of /metrics alone, apart from the public port; with "
                         "--processes N, process i serves it on this port + i "
                         "($EXOCORP_METRICS_PORT)")
    gw.add_argument("--processes", type=int, default=int(_env("PROCESSES", str(d.processes))),
                    help="gateway processes sharing the public port (SO_REUSEPORT), one core "
                         "each; more than 1 adds a supervisor that restarts them "
                         "($EXOCORP_PROCESSES)")
    # Set by the supervisor on the command lines of its children.
    gw.add_argument("--process-index", type=int, default=None, help=argparse.SUPPRESS)
    gw.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    gw.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                    help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    gw.add_argument("--database-url", default=database_url_from_env(),
                    help="SQLAlchemy URL ($DATABASE_URL; default: SQLite exocorp.db here)")
    gw.add_argument("--namespace", default=_env("NAMESPACE", d.platform_namespace),
                    help="platform namespace ($EXOCORP_NAMESPACE)")
    gw.add_argument("--cookie-secure", action=argparse.BooleanOptionalAction,
                    default=_env_bool("COOKIE_SECURE", d.cookie_secure),
                    help="Secure session cookie ($EXOCORP_COOKIE_SECURE; off only for plain "
                         "HTTP in development)")
    gw.add_argument("--session-idle-minutes", type=float,
                    default=float(_env("SESSION_IDLE_MINUTES",
                                       str(d.session_idle_timeout.total_seconds() / 60))))
    gw.add_argument("--session-absolute-hours", type=float,
                    default=float(_env("SESSION_ABSOLUTE_HOURS",
                                       str(d.session_absolute_timeout.total_seconds() / 3600))))
    gw.add_argument("--access-log", action=argparse.BooleanOptionalAction,
                    default=_env_bool("ACCESS_LOG", d.access_log),
                    help="log a line per request answered, at INFO ($EXOCORP_ACCESS_LOG; costs "
                         "about as much CPU as a cached read itself)")
    gw.add_argument("--auth-cache-seconds", type=float,
                    default=float(_env("AUTH_CACHE_SECONDS", str(d.auth_cache_seconds))),
                    help="reuse resolved sessions and memberships this long (0: never)")
    gw.add_argument("--agent-token-days", type=int,
                    default=int(_env("AGENT_TOKEN_DAYS", str(d.agent_token_ttl.days))),
                    help="days an agent's bearer token works after it is issued or renewed "
                         "($EXOCORP_AGENT_TOKEN_DAYS)")
    gw.add_argument("--signup-credit", type=int,
                    default=int(_env("SIGNUP_CREDIT", str(d.signup_credit))),
                    help="credit of every new account, in minor units ($EXOCORP_SIGNUP_CREDIT)")
    gw.add_argument("--min-credit-hours", type=float,
                    default=float(_env("MIN_CREDIT_HOURS", str(d.min_credit_hours))),
                    help="provision, resume or a bigger update needs credit for this many hours "
                         "of everything the account would run, else 402 (0: a positive balance "
                         "is enough; $EXOCORP_MIN_CREDIT_HOURS)")
    gw.add_argument("--suspension-grace-hours", type=float,
                    default=float(_env("SUSPENSION_GRACE_HOURS",
                                       str(d.suspension_grace.total_seconds() / 3600))),
                    help="a suspended account's exocorps are paused, then stopped after this "
                         "many hours ($EXOCORP_SUSPENSION_GRACE_HOURS)")
    gw.add_argument("--signup-requires-owner", action=argparse.BooleanOptionalAction,
                    default=_env_bool("SIGNUP_REQUIRES_OWNER", d.signup_requires_owner),
                    help="refuse public signup while no platform owner exists "
                         "($EXOCORP_SIGNUP_REQUIRES_OWNER)")
    gw.add_argument("--signup-max-per-client", type=int,
                    default=int(_env("SIGNUP_MAX_PER_CLIENT", str(d.signup_max_per_client))),
                    help="signups per client address per hour before 429")
    gw.add_argument("--login-max-failures", type=int,
                    default=int(_env("LOGIN_MAX_FAILURES", str(d.login_max_failures))),
                    help="login attempts per e-mail address in 15 minutes before 429")
    gw.add_argument("--login-max-failures-per-client", type=int,
                    default=int(_env("LOGIN_MAX_FAILURES_PER_CLIENT",
                                     str(d.login_max_failures_per_ip))),
                    help="login attempts per client address in 15 minutes before 429")
    gw.add_argument("--trusted-proxies", default=_env("TRUSTED_PROXIES", ""),
                    help="comma-separated networks (CIDR) of reverse proxies whose "
                         "X-Forwarded-For names the client ($EXOCORP_TRUSTED_PROXIES)")
    gw.add_argument("--hash-concurrency", type=int,
                    default=int(_env("HASH_CONCURRENCY", str(d.hash_concurrency))),
                    help="password hashes at once, 503 beyond (0: from the memory limit)")
    gw.add_argument("--hash-queue", type=int,
                    default=int(_env("HASH_QUEUE", str(d.hash_queue))),
                    help="requests that may wait for a hash slot (-1: four per slot)")
    gw.add_argument("--memory-limit-bytes", type=int,
                    default=int(_env("MEMORY_LIMIT_BYTES", str(d.memory_limit_bytes))),
                    help="the container's memory limit ($EXOCORP_MEMORY_LIMIT_BYTES; 0: read "
                         "the cgroup)")
    gw.add_argument("--portal-base-domain", default=_env("PORTAL_BASE_DOMAIN",
                                                         d.portal_base_domain))
    gw.add_argument("--app-base-domain", default=_env("APP_BASE_DOMAIN", d.app_base_domain))
    gw.add_argument("--public-base-url", default=_env("PUBLIC_BASE_URL", d.public_base_url),
                    help="URL browsers use, e.g. https://exocorp.example.com (CSRF origin check)")
    gw.add_argument("--shards", type=_shard_list, default=_shard_list(_env("SHARDS", "")),
                    help="operator shards new exocorps are assigned among, e.g. "
                         "default,blue,green ('' = all to the default shard)")
    gw.add_argument("--max-body-bytes", type=int,
                    default=int(_env("MAX_BODY_BYTES", str(d.max_body_bytes))))
    gw.add_argument("--ui-dist-dir", default=_env("UI_DIST_DIR", ""),
                    help="the dashboard build to serve at / (default: the package's ui_dist)")
    gw.add_argument("--stream-keepalive-seconds", type=float,
                    default=float(_env("STREAM_KEEPALIVE_SECONDS",
                                       str(d.stream_keepalive_seconds))),
                    help="keepalive comment interval of event streams")
    gw.add_argument("--max-streams-per-session", type=int,
                    default=int(_env("MAX_STREAMS_PER_SESSION", str(d.max_streams_per_session))),
                    help="open event streams per session or agent token before 429")
    gw.add_argument("--idempotency-stale-seconds", type=float,
                    default=float(_env("IDEMPOTENCY_STALE_SECONDS",
                                       str(d.idempotency_stale_after.total_seconds()))),
                    help="a retry takes over an Idempotency-Key whose request has not finished "
                         "after this long (its gateway died)")
    gw.add_argument("--log-level", default=_env("LOG_LEVEL", "info"),
                    choices=["debug", "info", "warning", "error"])
    gw.set_defaults(func=cmd_gateway)

    owner = sub.add_parser("platform-owner", help="create a platform owner in the database")
    owner.add_argument("--email", required=True)
    owner.add_argument("--password-file", required=True, help="file holding the password")
    owner.add_argument("--promote-existing", action="store_true",
                       help="the address is already registered and the account is yours: make "
                            "it a platform owner, reset its password to the file's and revoke "
                            "its sessions and agent tokens")
    owner.add_argument("--database-url", default=database_url_from_env(),
                       help="SQLAlchemy URL ($DATABASE_URL)")
    owner.set_defaults(func=cmd_platform_owner)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range (0 to 65535)")
    return port


class _Help(argparse.HelpFormatter):
    """Shows each option's default (unless it has none, or the help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line (argparse prints the whole usage first)."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


# Options of the service commands whose help is not written next to them.
_OPTION_HELP = {
    "--port": "port to listen on ($EXOCORP_PORT)",
    "--portal-base-domain": "portals live at <slug>.<this domain> ($EXOCORP_PORTAL_BASE_DOMAIN)",
    "--app-base-domain": "applications live at <slug>.<this domain> "
                         "($EXOCORP_APP_BASE_DOMAIN)",
    "--ingress-class": "IngressClass of the exocorps' routes ($EXOCORP_INGRESS_CLASS)",
    "--ingress-namespace": "namespace of the ingress controller, for network policies "
                           "($EXOCORP_INGRESS_NAMESPACE)",
    "--storage-class": "StorageClass of the exocorps' volumes ('' = the cluster default; "
                       "$EXOCORP_STORAGE_CLASS)",
    "--max-concurrent-rollouts": "rollouts running at once across the fleet "
                                 "($EXOCORP_MAX_CONCURRENT_ROLLOUTS)",
    "--resync-seconds": "reconcile every exocorp at least this often "
                        "($EXOCORP_RESYNC_SECONDS)",
    "--workers": "exocorps reconciled in parallel ($EXOCORP_WORKERS)",
    "--log-level": "log verbosity ($EXOCORP_LOG_LEVEL)",
    "--session-idle-minutes": "a session ends after this long unused "
                              "($EXOCORP_SESSION_IDLE_MINUTES)",
    "--session-absolute-hours": "a session ends this long after login, used or not "
                                "($EXOCORP_SESSION_ABSOLUTE_HOURS)",
    "--max-body-bytes": "larger request bodies get 413 ($EXOCORP_MAX_BODY_BYTES)",
    "--email": "the user's e-mail address",
    "--directory": "where --write puts the CRD files",
}


def _complete_help(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _Help
    for action in parser._actions:
        if action.help is None:
            action.help = next((_OPTION_HELP[o] for o in action.option_strings
                                if o in _OPTION_HELP), None)
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                child.description = child.description or summaries.get(name)
                _complete_help(child)


# Built only when asked for: their defaults come from modules that import the database and
# Kubernetes libraries, which would make every `exocorp --help` slow.
_SERVICES: dict[str, tuple[str, Callable[[argparse._SubParsersAction[argparse.ArgumentParser]],
                                         None]]] = {
    "operator": ("run the operator (reconciles Exocorp resources)", _add_operator),
    "gateway": ("run the REST gateway (API, /healthz, /readyz; /metrics on --metrics-port)",
                _add_gateway),
    "platform-owner": ("create (or promote) a platform owner in the database", _add_gateway),
}


def _command_of(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line. ``argv`` (default: every command) names the command whose
    service options to build; the others show only their description."""
    wanted = None if argv is None else (_command_of(argv) or "")
    parser = _Parser(prog="exocorp", description=__doc__, formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"exocorp {__version__}")
    sub = cast("argparse._SubParsersAction[argparse.ArgumentParser]", parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"))

    def command(name: str, summary: str, description: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description or summary,
                              formatter_class=_Help)

    dev = command("dev", "run the whole platform locally (foreground; Ctrl-C stops)",
                  "Run a local control plane, the operator and the gateway in the foreground; "
                  "Ctrl-C stops everything it started.")
    dev.add_argument("--nodes", type=int, default=2, help="fake kwok nodes")
    dev.add_argument("--port", type=_port, default=8000,
                     help="gateway port on 127.0.0.1 (0 picks a free one)")
    dev.set_defaults(func=cmd_dev)

    crds = command("crds", "print (or --write) the generated CRDs")
    crds.add_argument("--write", action="store_true", help="write them into --directory")
    crds.add_argument("--directory", default="manifests/crds")
    crds.set_defaults(func=cmd_crds)

    built: set[Callable[..., None]] = set()
    for name, (summary, add) in _SERVICES.items():
        if wanted in (None, name, *[n for n, (_s, a) in _SERVICES.items() if a is add]):
            if add not in built:
                add(sub)
                built.add(add)
        else:
            command(name, summary, summary + " (run `exocorp " + name + " --help` for its "
                    "options)")

    cluster = command("cluster", "the local Kubernetes control plane")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "up": cmd_cluster_up, "down": cmd_cluster_down, "status": cmd_cluster_status,
        "build": cmd_cluster_build,
    }
    helps = {
        "up": "start a control plane in the background",
        "down": "stop the processes it started",
        "status": "show its processes and how to reach it",
        "build": "build the control-plane binaries into the cache",
    }
    for name, func in commands.items():
        p = csub.add_parser(name, help=helps[name], description=helps[name],
                            formatter_class=_Help)
        p.add_argument("--name", default="default", help="cluster name")
        if name == "up":
            p.add_argument("--nodes", type=int, default=2, help="fake kwok nodes")
        if name == "down":
            p.add_argument("--purge", action="store_true", help="also delete its data")
        p.set_defaults(func=func)

    _add_client(command)
    _complete_help(parser)
    return parser


def _add_client(command: Callable[..., argparse.ArgumentParser]) -> None:
    from exocorp.client import commands as client

    def output(p: argparse.ArgumentParser) -> None:
        p.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"],
                       default="table", help="output format")

    login = command("login", "log in to a gateway and keep the session (file mode 0600)",
                    "Log in and keep the session token in ~/.config/exocorp/credentials.json "
                    "($EXOCORP_CONFIG), readable by you only. The password is asked for, or "
                    "read from --password-file or standard input. Lost the password? Log in "
                    "with --recovery-kit-file, then set a new one with `exocorp password`.")
    login.add_argument("--server", default=client.env_server(),
                       help="the gateway's URL ($EXOCORP_SERVER)")
    login.add_argument("--email", required=True, help="your e-mail address")
    secret = login.add_mutually_exclusive_group()
    secret.add_argument("--password-file", help="read the password from this file")
    secret.add_argument("--recovery-kit-file",
                        help="log in with the recovery kit in this file instead (it is "
                             "replaced; the session may only set a new password)")
    login.set_defaults(func=client.login, client=True)
    changing = command("password", "change your password (every other session ends)",
                       "Set a new password: asked for, or read from --password-file or standard "
                       "input. The current one is asked for too, unless you logged in with the "
                       "recovery kit. Every other session and agent token of yours ends.")
    changing.add_argument("--password-file", help="read the new password from this file")
    changing.add_argument("--current-password-file",
                          help="read the current password from this file")
    changing.set_defaults(func=client.password, client=True)
    leave = command("logout", "end the session and forget it")
    leave.add_argument("--everywhere", action="store_true",
                       help="end every session of yours, on every device, and cut off every "
                            "agent you approved")
    leave.set_defaults(func=client.logout, client=True)
    ls = command("ls", "list your exocorps")
    output(ls)
    ls.set_defaults(func=client.ls, client=True)
    get = command("get", "show one exocorp")
    get.add_argument("id", help="the exocorp's id (its slug)")
    output(get)
    get.set_defaults(func=client.get, client=True)
    preview = command("manifest", "the Kubernetes objects the operator applies (owner)",
                      "The Kubernetes objects the operator applies for an exocorp, from its "
                      "saved draft (before provisioning, or when newer than the last action) "
                      "or its spec. Credential values are never shown. Owner only.")
    preview.add_argument("id", help="the exocorp's id (its slug)")
    preview.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml",
                         help="yaml: a multi-document stream of the objects; json: the whole "
                              "answer (source, release, objects, notes)")
    preview.set_defaults(func=client.manifest, client=True)
    summaries = {
        "provision": "provision a draft, or start a stopped exocorp",
        "update": "update to a newer release",
        "restart": "restart from the last successful revision",
        "pause": "pause the agents (the portal stays up)",
        "resume": "resume a paused exocorp",
        "stop": "stop everything (data kept)",
        "rollback": "roll back to an earlier successful revision",
    }
    for action in client.ACTIONS:
        p = command(action, summaries[action])
        p.add_argument("id", help="the exocorp's id (its slug)")
        p.add_argument("--reason", required=action == "pause",
                       help="why (kept in the audit trail" +
                            ("; required)" if action == "pause" else ")"))
        if action == "update":
            p.add_argument("--version", dest="version", help="the release to update to "
                           "(default: the newest on the channel)")
            p.add_argument("--channel", choices=["stable", "beta", "canary"],
                           help="switch to this channel (default: the current one)")
        if action == "rollback":
            p.add_argument("--to", help="revision name or number (default: the previous "
                           "successful one)")
        output(p)
        p.set_defaults(func=client.act, client=True)
    destroy = command("destroy", "destroy an exocorp for good (asks for its slug)")
    destroy.add_argument("id", help="the exocorp's id (its slug)")
    destroy.add_argument("--confirm", help="the slug typed back, for scripts (default: ask)")
    destroy.add_argument("--reason", help="why (kept in the audit trail)")
    destroy.set_defaults(func=client.destroy, client=True)
    listing = command("members", "list an exocorp's members (and, for its owner, invitations)")
    listing.add_argument("id", help="the exocorp's id (its slug)")
    output(listing)
    listing.set_defaults(func=client.members, client=True)
    inviting = command("invite", "invite a person to an exocorp by e-mail (owner)")
    inviting.add_argument("id", help="the exocorp's id (its slug)")
    inviting.add_argument("email", help="their e-mail address")
    inviting.add_argument("--role", choices=["member", "viewer"], default="member",
                          help="member: reads, edits the draft, drives the lifecycle; "
                               "viewer: reads")
    inviting.set_defaults(func=client.invite, client=True)
    command("invitations", "your open invitations").set_defaults(func=client.invitations,
                                                                 client=True)
    for verb in ("accept", "decline"):
        p = command(verb, f"{verb} an invitation")
        p.add_argument("invitation", help="the invitation's id (see `exocorp invitations`)")
        p.set_defaults(func=client.answer, client=True)
    role = command("set-role", "change a member's role (owner)")
    role.add_argument("id", help="the exocorp's id (its slug)")
    role.add_argument("user", help="the member's user id (see `exocorp members`)")
    role.add_argument("role", choices=["member", "viewer"], help="the new role")
    role.set_defaults(func=client.set_role, client=True)
    removing = command("remove-member", "remove a member from an exocorp (owner)")
    removing.add_argument("id", help="the exocorp's id (its slug)")
    removing.add_argument("user", help="the member's user id (see `exocorp members`)")
    removing.set_defaults(func=client.remove_member, client=True)
    leaving = command("leave", "leave an exocorp you are a member of")
    leaving.add_argument("id", help="the exocorp's id (its slug)")
    leaving.set_defaults(func=client.remove_member, client=True)
    watch = command("watch", "follow an exocorp's changes live")
    watch.add_argument("id", help="the exocorp's id (its slug)")
    watch.add_argument("--until", choices=["Draft", "Provisioning", "Starting", "Running",
                                           "Paused", "Stopped", "Failed"],
                       help="exit 0 once this phase is reached")
    output(watch)
    watch.set_defaults(func=client.watch, client=True)
    _add_admin(command, output)


def _add_admin(command: Callable[..., argparse.ArgumentParser],
               output: Callable[[argparse.ArgumentParser], None]) -> None:
    from exocorp.client import commands as client

    admin = command("admin", "platform owners: limits, disabling users")
    asub = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    limits = asub.add_parser("limits", help="show the default and platform limits and what "
                             "the fleet uses (`limits set` changes them)")
    output(limits)
    limits.set_defaults(func=client.limits, client=True)
    lsub = limits.add_subparsers(dest="limits_command", metavar="COMMAND")
    setting = lsub.add_parser(
        "set", help="set every limit of a scope at once",
        description="Set every limit of SCOPE at once: a bound not given becomes unlimited. "
                    "Nothing running is removed; a limit refuses creating, provisioning, "
                    "resuming or growing beyond it.")
    setting.add_argument("scope", metavar="SCOPE",
                         help="default (every account without limits of its own), platform "
                              "(all accounts together) or a user id (that account)")
    setting.add_argument("--max-exocorps", type=int, metavar="N",
                         help="exocorps allowed (default: unlimited)")
    setting.add_argument("--max-cpu", metavar="QUANTITY",
                         help="CPU the running exocorps may request, e.g. 16 or 2500m "
                              "(default: unlimited)")
    setting.add_argument("--max-memory", metavar="QUANTITY",
                         help="memory they may request, e.g. 64Gi (default: unlimited)")
    setting.add_argument("--max-storage", metavar="QUANTITY",
                         help="storage their state volumes may claim, e.g. 100Gi (default: "
                              "unlimited)")
    setting.set_defaults(func=client.set_limits, client=True)
    for verb, summary in (("disable", "disable a user: no login; every session and agent of "
                                      "theirs ends"),
                          ("enable", "let a disabled user log in again")):
        p = asub.add_parser(verb, help=summary)
        p.add_argument("user", help="the user's id (see GET /api/admin/billing/accounts)")
        p.set_defaults(func=client.set_disabled, client=True)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = build_parser(arguments).parse_args(arguments)
    args.argv = arguments  # `exocorp gateway --processes N` runs its own command line N times
    func: Callable[[argparse.Namespace], int] = args.func
    if getattr(args, "client", False):
        from exocorp.client.commands import run

        return run(func, args)
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
