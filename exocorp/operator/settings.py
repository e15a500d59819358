"""Operator settings: one dataclass, filled from flags or environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exocorp import names
from exocorp.runtime.settings import RuntimeSettings


@dataclass(frozen=True)
class OperatorSettings(RuntimeSettings):
    """Everything the operator's behaviour depends on besides the objects it watches: the
    runtime objects' settings (``RuntimeSettings``: domains, ingress, storage, user) and the
    fields below."""

    namespace: str = "exocorp-system"
    """Platform namespace: provider-credential Secrets and revision objects live here."""
    max_concurrent_rollouts: int = 10
    """Rollouts allowed at once across the fleet; the rest wait for a slot."""
    resync_seconds: float = 300.0
    """How often a settled exocorp is re-evaluated without any event (±10 % jitter): flushes
    its running time and re-applies its credential copy. Every change the operator watches
    (spec, pods, runtime objects) triggers a pass at once and a rollout is re-checked every
    second, so this costs O(N / resync) passes per second on an idle fleet, not O(N)."""
    workers: int = 16
    """Exocorps reconciled in parallel."""
    secret_refresh_seconds: float = 60.0
    """The credential copy in each exocorp's namespace is written, never read back (the operator
    may not read Secrets there): it is re-applied at least this often, so a copy deleted or
    edited by hand is restored within this time."""
    shard: str = ""
    """The operator shard this process is: it watches and reconciles only the Exocorps whose
    ``exocorp.io/shard`` label has this value ('' = the default shard: Exocorps without the
    label). Each shard runs its own Deployment and peering."""

    def shard_selector(self, *others: str) -> str:
        """Label selector of this shard's objects, ANDed with ``others``."""
        mine = f"{names.LABEL_SHARD}={self.shard}" if self.shard else f"!{names.LABEL_SHARD}"
        return ",".join((*others, mine))

    def owns(self, body: dict[str, Any]) -> bool:
        labels = (body.get("metadata") or {}).get("labels") or {}
        return str(labels.get(names.LABEL_SHARD) or "") == self.shard
