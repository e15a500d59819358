"""Gateway settings: one frozen dataclass, filled from flags and environment variables by the CLI
(``exocorp gateway``) and built directly by tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from exocorp import shards
from exocorp.api_gateway.client_address import parse_networks
from exocorp.store.engine import DEFAULT_DATABASE_URL
from exocorp.store.sessions import SessionPolicy

MAX_PROCESSES = 64
"""More gateway processes than this in one pod is a mistake (a pod has a few cores)."""


@dataclass(frozen=True)
class GatewaySettings:
    """Everything the gateway's behaviour depends on besides its database and the cluster."""

    host: str = "127.0.0.1"
    """Address to listen on (the chart passes 0.0.0.0)."""
    port: int = 8000
    """Port of the API, the dashboard, /healthz and /readyz: public (the chart's Ingress routes
    every path of it)."""
    metrics_port: int = 9090
    """Port of /metrics alone, on ``host``: scraped in-cluster, never routed by the Ingress. With
    ``processes`` > 1, process i serves its own /metrics on ``metrics_port + i``."""
    processes: int = 1
    """Gateway processes in this pod. 1: one process, as ever. More: a supervisor starts that many
    workers sharing ``port`` (SO_REUSEPORT), so the gateway uses more than one core (see
    ``supervisor`` and docs/scaling.md)."""
    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy URL of the platform records (SQLite file or PostgreSQL); see docs/storage.md."""
    platform_namespace: str = "exocorp-system"
    """Namespace of provider-credential Secrets and revisions ($EXOCORP_NAMESPACE)."""
    cookie_secure: bool = True
    """Mark the session cookie Secure (and name it with the __Host- prefix). False only for plain
    HTTP in development."""
    session_idle_timeout: timedelta = timedelta(hours=12)
    """A session unused for this long ends."""
    session_absolute_timeout: timedelta = timedelta(days=7)
    """A session ends this long after login, however busy."""
    agent_token_ttl: timedelta = timedelta(days=30)
    """An agent's bearer token expires this long after it is issued or renewed by its human."""
    signup_requires_owner: bool = True
    """Refuse public signup (403 ``signup_closed``) while no platform owner exists, so nobody can
    register the address the installer means to make platform owner before it exists."""
    signup_max_per_client: int = 5
    """Signups one client address may make per ``signup_window`` before 429 (counted in the
    database before any work): one client cannot farm the signup credit."""
    signup_window: timedelta = timedelta(hours=1)
    """The window of ``signup_max_per_client``."""
    signup_credit: int = 1000
    """Credit (minor units of the account currency) given to every new account."""
    min_credit_hours: float = 0.05
    """An action that raises an account's hourly cost (provision, resume, a bigger update) is
    refused (402 ``insufficient_credit``) unless the balance covers this many hours of everything
    the account would then run, at its price book's rates. 0: only a positive balance is
    required."""
    suspension_grace: timedelta = timedelta(hours=72)
    """How long a suspended account's exocorps stay paused (portal and app still up, still
    billed) before billing enforcement stops them."""
    login_max_failures: int = 5
    """Login attempts (successful ones are given back) per e-mail address within
    ``login_failure_window`` before 429. Counted in the database, before the password is
    checked, so the limit holds across replicas and concurrent requests."""
    login_max_failures_per_ip: int = 50
    """Login attempts (successful ones given back) per client address within
    ``login_failure_window`` before 429."""
    login_failure_window: timedelta = timedelta(minutes=15)
    """How long a login attempt counts against the throttle."""
    trusted_proxies: tuple[str, ...] = ()
    """Networks (CIDR) of reverse proxies whose ``X-Forwarded-For`` names the client (e.g. the
    Ingress controller's pods). Empty: the TCP peer is the client, the header is ignored."""
    hash_concurrency: int = 0
    """Password hashes (64 MiB each with the default argon2id parameters) run at once in each
    process; more answer 503 with Retry-After. 0: as many as half of this process's share of
    ``memory_limit_bytes`` holds (the limit divided by ``processes``)."""
    hash_queue: int = -1
    """Requests that may wait for a hash slot beyond those running; more answer 503 at once.
    -1: four per slot."""
    memory_limit_bytes: int = 0
    """The container's memory limit (the chart passes limits.memory). 0: read it from the
    cgroup; without one, 4 concurrent hashes."""
    portal_base_domain: str = "portal.exocorp.localhost"
    """Each exocorp's portal is <slug>.<portal_base_domain> (must match the operator's)."""
    app_base_domain: str = "app.exocorp.localhost"
    """Each exocorp's application endpoint is <slug>.<app_base_domain> (as the operator's)."""
    public_base_url: str = ""
    """The URL browsers reach the gateway at (e.g. https://exocorp.example.com): its origin is
    accepted for cookie-authenticated writes besides the request's own Host. Empty: Host only."""
    max_body_bytes: int = 64 * 1024
    """Largest request body accepted; larger ones get 413."""
    access_log: bool = False
    """One log line per request answered (aiohttp's access log, at INFO). Off by default: it
    doubled the CPU of a cached read (docs/performance.md), and the request metrics, the audit
    trail and the request id in every error already say what happened."""
    auth_cache_seconds: float = 5.0
    """How long a resolved session, agent token or membership is reused without asking the
    database (0: always ask). A logout or revocation made through another replica takes up to
    this long to be seen here; this replica's own changes are seen at once."""
    shutdown_timeout: float = 10.0
    """Seconds in-flight requests get to finish after SIGTERM."""
    idempotency_stale_after: timedelta = timedelta(seconds=30)
    """A request holding an Idempotency-Key that has not finished after this long is presumed
    dead (its gateway crashed): a retry with the key takes it over. Keep it above the slowest
    request; actions stay single even when it is not (their Kubernetes write is the commit
    point)."""
    idempotency_retention: timedelta = timedelta(hours=24)
    """Idempotency keys are forgotten this long after their first use."""
    watch_timeout_seconds: int = 300
    """Server-side timeout of each watch request of the cache (it reconnects after it)."""
    shards: tuple[str, ...] = ()
    """Operator shards a new exocorp is assigned among (stable hash of its name; ``default``
    is the default shard: no label). Empty: every exocorp goes to the default shard."""
    ui_dist_dir: Path | None = None
    """The dashboard's build to serve at ``/`` (None: ``exocorp/api_gateway/ui_dist``, where
    ``make ui`` writes it)."""
    stream_keepalive_seconds: float = 15.0
    """An event stream sends a ``: keepalive`` comment (and checks the caller's access again)
    after this long without events."""
    max_streams_per_session: int = 8
    """Open event streams per session or agent token; more get 429 ``too_many_streams``."""
    stream_queue_limit: int = 1000
    """Changed objects an event stream may have waiting before its client is dropped as too
    slow (changes of one object coalesce)."""
    stream_max_seconds: float = 3600.0
    """An event stream ends after this long (EventSource reconnects at once and starts from the
    current state): connections rebalance across replicas and no stream outlives its checks."""
    stream_write_timeout: float = 30.0
    """Seconds a stream's write may wait for a client that stopped reading before it is
    dropped."""

    def __post_init__(self) -> None:
        shards.parse(",".join(self.shards))  # raises ValueError on a bad name
        if self.signup_credit < 0:
            raise ValueError("signup_credit cannot be negative")
        if not 0 <= self.min_credit_hours <= 24 * 366:
            raise ValueError("min_credit_hours must be between 0 and a year's hours")
        if self.suspension_grace < timedelta(0):
            raise ValueError("suspension_grace cannot be negative")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.idempotency_stale_after <= timedelta(0):
            raise ValueError("idempotency_stale_after must be positive")
        if self.stream_keepalive_seconds <= 0 or self.stream_max_seconds <= 0:
            raise ValueError("stream intervals must be positive")
        if self.max_streams_per_session < 1 or self.stream_queue_limit < 1:
            raise ValueError("stream limits must be at least 1")
        if self.login_max_failures < 1 or self.login_max_failures_per_ip < 1:
            raise ValueError("login throttle limits must be at least 1")
        if self.signup_max_per_client < 1:
            raise ValueError("signup_max_per_client must be at least 1")
        if self.hash_concurrency < 0 or self.memory_limit_bytes < 0 or self.hash_queue < -1:
            raise ValueError("hash_concurrency, hash_queue and memory_limit_bytes cannot be "
                             "negative (hash_queue -1: four per slot)")
        if not 1 <= self.processes <= MAX_PROCESSES:
            raise ValueError(f"processes must be between 1 and {MAX_PROCESSES}")
        if self.port in self.metrics_ports:
            raise ValueError("metrics_port must differ from port (the public port must not "
                             "serve /metrics)" if self.processes == 1 else
                             f"port {self.port} is among the metrics ports of the "
                             f"{self.processes} processes (metrics_port to metrics_port + "
                             f"{self.processes - 1})")
        if self.processes > 1 and (0 in (self.port, self.metrics_port)
                                   or self.metrics_ports[-1] > 65535):
            raise ValueError("several processes need fixed ports (not 0), and metrics_port + "
                             "processes - 1 must be a port number")
        parse_networks(self.trusted_proxies)
        SessionPolicy(idle_timeout=self.session_idle_timeout,
                      absolute_timeout=self.session_absolute_timeout,
                      touch_interval=min(timedelta(minutes=1), self.session_idle_timeout / 2))

    @property
    def metrics_ports(self) -> range:
        """The /metrics port of each process, process i's at index i."""
        return range(self.metrics_port, self.metrics_port + self.processes)

    @property
    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(idle_timeout=self.session_idle_timeout,
                             absolute_timeout=self.session_absolute_timeout,
                             touch_interval=min(timedelta(minutes=1),
                                                self.session_idle_timeout / 2))

    @property
    def cookie_name(self) -> str:
        """``__Host-exocorp_session`` when Secure (the prefix pins it to this host, path /),
        ``exocorp_session`` otherwise (browsers refuse the prefix without Secure)."""
        return "__Host-exocorp_session" if self.cookie_secure else "exocorp_session"
