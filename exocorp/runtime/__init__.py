"""What runs for an exocorp, as plain Kubernetes manifests: the pure object builders
(``builders``) and the settings they depend on (``settings``).

No I/O: the operator applies these objects, and the gateway renders them for the owner's
manifest preview, so both show the same thing."""
