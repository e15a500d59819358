"""Every API group, label, annotation and finalizer name the platform uses, in one place."""

from typing import Final

GROUP: Final = "exocorp.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

EXOCORP_KIND: Final = "Exocorp"
EXOCORP_PLURAL: Final = "exocorps"
RELEASE_KIND: Final = "ExocorpRelease"
RELEASE_PLURAL: Final = "exocorpreleases"

FINALIZER: Final = f"{GROUP}/cleanup"

# Labels put on every object the operator manages (recommended Kubernetes labels first).
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_EXOCORP: Final = f"{GROUP}/exocorp"
LABEL_REVISION: Final = f"{GROUP}/revision"
LABEL_SHARD: Final = f"{GROUP}/shard"
"""Which operator shard reconciles an Exocorp (absent: the default shard); copied onto the
exocorp's runtime objects so each shard lists and watches only its own."""
MANAGER: Final = "exocorp-operator"

ANNOTATION_RESTART_AT: Final = f"{GROUP}/restartAt"
ANNOTATION_REQUESTED_BY: Final = f"{GROUP}/requested-by"
ANNOTATION_ACTION: Final = f"{GROUP}/action"
ANNOTATION_REQUEST_KEYS: Final = f"{GROUP}/request-keys"
"""JSON list of the last few gateway requests applied to an Exocorp, by Idempotency-Key digest
(written in the same patch as the action: the commit point of a retried request)."""

# Local control plane (kwok) selectors: fake nodes carry this annotation, and test pods ask for
# a simulated behaviour with the pod label below (ready is the default when it is absent).
KWOK_NODE_ANNOTATION: Final = "kwok.x-k8s.io/node"
KWOK_NODE_ANNOTATION_VALUE: Final = "fake"
SIM_BEHAVIOR_LABEL: Final = f"sim.{GROUP}/behavior"
SIM_CRASHLOOP: Final = "crashloop"
SIM_FAIL: Final = "fail"

# Provider-credential Secrets in the platform namespace (values only ever live there).
LABEL_PROVIDER: Final = f"{GROUP}/provider"
LABEL_ACCOUNT: Final = f"{GROUP}/account"
LABEL_CREDENTIAL: Final = f"{GROUP}/credential"
SECRET_VALUE_KEY: Final = "value"  # noqa: S105 (a data key, not a secret)
ANNOTATION_CREDENTIAL_NAME: Final = f"{GROUP}/credential-name"
ANNOTATION_FINGERPRINT: Final = f"{GROUP}/fingerprint"
ANNOTATION_ROTATED_AT: Final = f"{GROUP}/rotated-at"

# Operator bookkeeping on the objects it manages.
ANNOTATION_CREDENTIALS_HASH: Final = f"{GROUP}/credentials-hash"
ANNOTATION_OUTCOME: Final = f"{GROUP}/outcome"
ANNOTATION_ROLLOUT_KEY: Final = f"{GROUP}/rollout-key"
ANNOTATION_REASON: Final = f"{GROUP}/reason"
LABEL_CONTENT_HASH: Final = f"{GROUP}/content-hash"

# Events about cluster-scoped objects (Exocorps) live in the default namespace, as kubectl expects.
EVENT_NAMESPACE: Final = "default"


def runtime_namespace(exocorp_name: str) -> str:
    """Each exocorp runs in a namespace of its own."""
    return f"exo-{exocorp_name}"[:63].rstrip("-")
