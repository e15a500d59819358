"""What a revision (a ControllerRevision owned by the exocorp) holds, and how it is named.

A revision is named after a hash of its content, so applying the same content twice finds the
existing object instead of making a duplicate (the operator may crash between steps). Restoring
earlier content (rollback) therefore yields the earlier name again: like Deployments, the operator
re-uses that object and gives it a new number.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import Field

from exocorp.model.base import SpecModel
from exocorp.model.config import ConfigSnapshot
from exocorp.model.release import ReleaseRef
from exocorp.model.spec import ExocorpSpec

HASH_LENGTH = 10
_MAX_NAME = 253


class RevisionContent(SpecModel):
    """The immutable content of one revision: everything that defines the rollout."""

    release: ReleaseRef
    """Release channel and version."""
    config: ConfigSnapshot
    """Configuration snapshot."""
    rebuild_nonce: Annotated[int, Field(ge=0)] = 0
    """The spec's rebuildNonce, so a reprovision of identical content still differs."""

    @classmethod
    def from_spec(cls, spec: ExocorpSpec) -> RevisionContent | None:
        """The content the spec asks for; None while Draft (nothing to roll out)."""
        if not spec.provisioned or spec.release is None or spec.config is None:
            return None
        return cls(release=spec.release, config=spec.config, rebuild_nonce=spec.rebuild_nonce)

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace, defaults left out.

        Leaving defaults out keeps hashes stable when a later version of the platform adds a
        field with a default: existing exocorps keep their revision instead of all rolling out.
        """
        wire = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
        return json.dumps(wire, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(content: RevisionContent) -> str:
    """First 10 hex characters of the SHA-256 of the canonical JSON."""
    return hashlib.sha256(content.canonical_json().encode()).hexdigest()[:HASH_LENGTH]


def revision_name(exocorp_name: str, content: RevisionContent) -> str:
    """`<exocorp>-<hash>`, the exocorp part shortened if the name would be too long."""
    suffix = f"-{content_hash(content)}"
    return exocorp_name[: _MAX_NAME - len(suffix)].rstrip("-.") + suffix
