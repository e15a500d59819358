"""The owner's manifest preview: the Kubernetes objects the operator applies for an exocorp,
rendered by the operator's own builders (``exocorp.runtime.builders``) from the saved draft when
it is newer than the spec (what the next provision or reprovision applies), else from the spec.

Pure: the caller looks up the draft, the release catalog and the owner's credentials. No
credential value is known here, and none is rendered: the credential Secret shows its key
names only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from exocorp import names
from exocorp.lifecycle.bindings import resolve_bindings
from exocorp.lifecycle.errors import ErrorCode, conflict
from exocorp.lifecycle.plan import draft_and_release
from exocorp.model.base import parse_rfc3339
from exocorp.model.config import Draft, ProviderBinding
from exocorp.model.objects import Exocorp
from exocorp.model.release import ExocorpReleaseSpec, ReleaseRef, find_release
from exocorp.runtime import builders
from exocorp.runtime.settings import RuntimeSettings

REDACTED = "<redacted>"
"""Stands for every value derived from a credential."""
NEXT_REVISION = "<next revision>"
"""Stands for the revision name the operator gives a rollout that has not started."""

Source = Literal["draft", "spec"]


@dataclass(frozen=True)
class ManifestPreview:
    source: Source
    """What the objects were rendered from."""
    release_version: str
    objects: list[builders.Obj]
    """In the order the operator applies them."""
    notes: list[str]
    """What the preview cannot know for certain."""


def draft_is_newer(exocorp: Exocorp, draft_saved_at: datetime | None) -> bool:
    """A draft is rendered before the first provision, and afterwards when it was saved after
    the spec's last lifecycle action (a change the next reprovision would apply). That action's
    time has second precision: a draft saved within the same second is not newer."""
    if draft_saved_at is None:
        return False
    last = exocorp.spec.last_action
    if not exocorp.spec.provisioned or last is None:
        return True
    return draft_saved_at.replace(microsecond=0) > parse_rfc3339(last.at)


def preview_manifest(exocorp: Exocorp, *, draft: Draft | Mapping[str, Any] | None,
                     draft_saved_at: datetime | None, releases: Sequence[ExocorpReleaseSpec],
                     provider_secrets: Mapping[str, Sequence[str]],
                     settings: RuntimeSettings) -> ManifestPreview:
    """The objects, or the 409 provision would give (no draft, an invalid draft, a release
    that is not published)."""
    spec = exocorp.spec
    source: Source = "draft" if draft is not None and draft_is_newer(
        exocorp, draft_saved_at) else "spec"
    if source == "spec" and spec.provisioned:
        assert spec.release is not None  # a provisioned spec has release and config
        found = find_release(releases, spec.release.version)
        if found is None:
            raise conflict(ErrorCode.RELEASE_NOT_FOUND,
                           f"release {spec.release.version} is no longer published; "
                           "reprovision or update")
        release, rendered = found, exocorp
    else:  # nothing provisioned yet, or a newer draft: what provision would apply
        source = "draft"
        valid, release = draft_and_release(draft, releases)
        needs = resolve_bindings(release, valid.config, valid.provider_bindings,
                                 provider_secrets)
        rendered = exocorp.model_copy(update={"spec": spec.model_copy(update={
            "release": ReleaseRef(channel=valid.channel, version=release.version),
            "config": valid.config,
            "provider_bindings": [ProviderBinding(provider=n.provider, secret_name=n.secret_name)
                                  for n in needs if n.secret_name is not None]})})
    rollout = exocorp.status.rollout
    revision = rollout.revision if source == "spec" and rollout is not None else NEXT_REVISION
    # The Secret's keys are the credentials the operator would copy: those that exist.
    credentials = {builders.credential_key(b.provider): REDACTED
                   for b in rendered.spec.provider_bindings
                   if b.secret_name in provider_secrets.get(b.provider, ())}
    inputs = builders.RuntimeInputs(release=release, revision=revision, credentials=credentials,
                                    settings=settings)
    objects = [_redacted(obj) for obj in builders.runtime_objects(rendered, inputs)]
    notes = [
        "Domains follow the gateway's configuration (the operator is configured to match); the "
        "ingress class and namespace, TLS issuer, storage class and runtime user are the "
        "defaults and follow the operator's configuration.",
        "Credential values, and the hash of them on each pod template, are never shown: "
        f"they read {REDACTED}.",
    ]
    if revision == NEXT_REVISION:
        notes.append(f"The revision name ({NEXT_REVISION}) is given when the rollout starts.")
    return ManifestPreview(source=source, release_version=release.version, objects=objects,
                           notes=notes)


def _redacted(obj: builders.Obj) -> builders.Obj:
    """``obj`` without any value derived from a credential."""
    if obj["kind"] == "Secret":
        return {**obj, "data": dict.fromkeys(obj.get("data") or {}, REDACTED)}
    if obj["kind"] == "Deployment":
        template = obj["spec"]["template"]["metadata"]
        annotations = template.get("annotations") or {}
        if names.ANNOTATION_CREDENTIALS_HASH in annotations:
            annotations[names.ANNOTATION_CREDENTIALS_HASH] = REDACTED
    return obj
