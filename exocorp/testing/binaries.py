"""Where the control-plane binaries come from: a per-version cache outside the repository,
filled by ``build-control-plane.sh`` from the Go module proxy, or ``KUBEBUILDER_ASSETS``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

K8S_VERSION: Final = "1.36.3"
ETCD_VERSION: Final = "3.6.16"
KWOK_VERSION: Final = "0.8.0"
HELM_VERSION: Final = "3.21.4"

BUILD_SCRIPT: Final = Path(__file__).with_name("build-control-plane.sh")
COMPONENTS: Final = (
    "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok",
    "helm",
)
# envtest's asset directory carries these three; the rest always come from our cache.
ENVTEST_COMPONENTS: Final = ("etcd", "kube-apiserver", "kubectl")


class BinariesMissingError(RuntimeError):
    """A control-plane binary is neither cached nor buildable."""


def cache_root() -> Path:
    explicit = os.environ.get("EXOCORP_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "exocorp"


def cache_bin_dir() -> Path:
    """The build script's output directory; the version key must match the script's."""
    explicit = os.environ.get("EXOCORP_K8S_BIN")
    if explicit:
        return Path(explicit)
    key = f"v{K8S_VERSION}-etcd{ETCD_VERSION}-kwok{KWOK_VERSION}-helm{HELM_VERSION}"
    return cache_root() / "k8s" / key / "bin"


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every binary the local control plane runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    helm: Path

    @property
    def kwok_stages(self) -> Path:
        """Stock kwok stage definitions, copied from the kwok module next to the cache."""
        return cache_bin_dir().parent / "kwok-stages"

    def path(self, component: str) -> Path:
        value: Path = getattr(self, component.replace("-", "_"))
        return value


def _resolve(component: str) -> Path:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and component in ENVTEST_COMPONENTS:
        candidate = Path(assets) / component
        if candidate.is_file():
            return candidate
    return cache_bin_dir() / component


def missing() -> list[str]:
    return [c for c in COMPONENTS if not os.access(_resolve(c), os.X_OK)]


def build(*, quiet: bool = False) -> None:
    """Run the build script (it skips what is cached and prints progress per component)."""
    env = dict(os.environ, EXOCORP_K8S_VERSION=K8S_VERSION, EXOCORP_ETCD_VERSION=ETCD_VERSION,
               EXOCORP_KWOK_VERSION=KWOK_VERSION, EXOCORP_HELM_VERSION=HELM_VERSION,
               EXOCORP_K8S_BIN=str(cache_bin_dir()))
    out = subprocess.DEVNULL if quiet else sys.stderr
    result = subprocess.run(["bash", str(BUILD_SCRIPT), "all"], env=env, stdout=out,
                            stderr=out, check=False)
    if result.returncode != 0:
        raise BinariesMissingError(
            f"building the control plane failed (exit {result.returncode}); rerun "
            f"`bash {BUILD_SCRIPT}` to see the error. Go and access to the Go module proxy "
            "are required."
        )


def ensure(*, build_missing: bool = True) -> Binaries:
    """Return the binaries, building whatever is not cached yet."""
    absent = missing()
    if absent and build_missing:
        print(f"control plane: building {', '.join(absent)} into {cache_bin_dir()} "
              "(a cold build takes several minutes)", file=sys.stderr)
        build()
        absent = missing()
    if absent:
        raise BinariesMissingError(
            f"missing control-plane binaries: {', '.join(absent)} (looked in "
            f"{cache_bin_dir()}); run `exocorp cluster build`"
        )
    return Binaries(**{c.replace("-", "_"): _resolve(c) for c in COMPONENTS})
