"""exocorp.api_gateway: the REST gateway (aiohttp).

Layout (this package imports nothing eagerly, so the CLI stays fast; drawn in
docs/architecture.md). One subpackage per API group, each holding its routes (``routes``: one
``RouteTable``), its request/response schemas and its views:

- ``auth`` (accounts, sessions), ``registry`` (an owner's exocorps, drafts,
  bindings, lifecycle actions), ``releases``, ``secrets`` (provider credentials), ``dashboard``,
  ``admin`` (platform-owner views and actions), ``audit`` (the trail, and the worker recording
  the operator's automatic rollbacks), ``runtime`` (cluster capacity, pods, events, nodes),
  ``agents`` (operator clients and their handoff page), ``billing``.

over a shared core, which never imports a group (only ``app`` and ``main`` wire them):

- ``app``: ``create_app(settings, *, kube, database, cache)``, ``CORE_ROUTE_TABLES``,
  ``EXTENSION_ROUTE_TABLES`` (append a new API group's ``RouteTable`` here), ``route_tables()``.
- ``main``: ``run(settings)``, ``serve(settings, stop=...)``, ``bootstrap_platform_owner(...)``.
- ``settings``: ``GatewaySettings``.
- ``routing``: ``RouteTable``, ``Auth``, ``json_body``, ``query_params``, ``json_response``.
- ``keys``: typed ``AppKey``s (``KUBE``, ``DATABASE``, ``CACHE``, ``SETTINGS``, ``CLOCK``,
  ``ACCESS_CACHE``, ...).
- ``access``: authentication and authorization: ``principal_of``, ``require_user``,
  ``require_platform_owner``, ``exocorp_access``; ``principal``: ``Principal``.
- ``access_cache``: ``AccessCache`` (``app[ACCESS_CACHE]``): short-lived sessions, memberships and
  fleets; call ``forget_user`` / ``forget_exocorp`` after changing them.
- ``errors``: ``Problem`` and ``bad_request``/``not_found``/``conflict``/``forbidden``/...
- ``middleware``, ``idempotency`` (``Idempotency-Key`` on every POST), ``metrics``.
- ``audited``: ``audited(request, action, exocorp_id=...)``.
- ``operations``: ``run_action(...)`` (lifecycle actions with the draft and billing standing);
  the saved draft itself is ``store.drafts.exocorp_draft_config``.
- ``schemas``, ``views``: bodies and views shared by several groups.
- ``watch_cache``: ``WatchCache`` (Exocorps, releases, credential metadata); ``credentials``:
  provider-credential Secrets <-> ``Credential``; ``throttle``: failed-login throttling.
- ``health``: probes and metrics; ``openapi``: the generated OpenAPI 3.1 document and docs page
  (``python -m exocorp.api_gateway.openapi --write docs/openapi.json``).

See docs/api.md.
"""
