"""exocorp.api_gateway: the REST gateway (aiohttp).

Public surface, by module (import from the module; this package imports nothing eagerly, so the
CLI stays fast):

- ``app``: ``create_app(settings, *, kube, database, cache)``, ``CORE_ROUTE_TABLES``,
  ``EXTENSION_ROUTE_TABLES`` (append a new API group's ``RouteTable`` here), ``route_tables()``.
- ``settings``: ``GatewaySettings``.
- ``main``: ``run(settings)``, ``serve(settings, stop=...)``, ``bootstrap_platform_owner(...)``.
- ``routing``: ``RouteTable``, ``Auth``, ``json_body``, ``query_params``, ``json_response``.
- ``keys``: typed ``AppKey``s (``KUBE``, ``DATABASE``, ``CACHE``, ``SETTINGS``, ``CLOCK``,
  ``ACCESS_CACHE``, ...).
- ``auth``: ``principal_of``, ``require_user``, ``require_platform_owner``, ``exocorp_access``.
- ``errors``: ``Problem`` and ``bad_request``/``not_found``/``conflict``/``forbidden``/...
- ``audit``: ``audited(request, action, exocorp_id=...)``.
- ``operations``: ``run_action(...)`` (lifecycle actions with the draft and billing standing),
  ``billing_standing``, ``saved_draft``.
- ``watch_cache``: ``WatchCache`` (Exocorps, releases, credential metadata).
- ``access_cache``: ``AccessCache`` (``app[ACCESS_CACHE]``): short-lived sessions, memberships and
  fleets; call ``forget_user`` / ``forget_exocorp`` after changing them.
- ``openapi``: the generated OpenAPI 3.1 document and docs page.

See docs/api.md.
"""
