"""The platform's container image, built and run with podman on a machine with neither a Docker
engine nor a reachable container registry (docs/deployment.md, "Building without a registry").

- The base is made from Debian packages (`mmdebstrap`: Python 3.11 with `venv`, CA certificates,
  plus this machine's own CA certificates so the build can reach the package index through its
  proxy) and imported as ``localhost/exocorp-base:<hash>``; it stands in for
  ``python:3.11-slim-bookworm`` through the Dockerfile's ``PYTHON_IMAGE`` argument.
- The image is the repository's unmodified Dockerfile, tagged ``localhost/exocorp:test-<hash>``
  where the hash covers every build input: a rebuild happens only when one of them changed, so a
  CI machine builds it once per change and every later run reuses it.
- podman runs with ``runc`` (cgroups here are v1/hybrid, which crun refuses), ulimits inside the
  host's hard limits (podman's defaults exceed them) and the host network.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from exocorp import __version__
from exocorp.testing.binaries import cache_root
from exocorp.testing.platform import ServiceProcess

SUITE = "bookworm"
BASE_PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates")
BASE_REPOSITORY = "localhost/exocorp-base"
IMAGE_REPOSITORY = "localhost/exocorp"
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
# What the Dockerfile copies (.dockerignore keeps the rest out of the context).
CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "README.md", "exocorp")
SKIPPED_PARTS = {"__pycache__", ".mypy_cache"}
# A container's processes: plenty for the two services, and below the host's hard limit.
NPROC = 4096


class ImageError(RuntimeError):
    """A tool is missing or a build step failed; the message says which and what to do."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ImageError(f"{name} is not installed: run `make system-deps` "
                         "(Debian's podman, buildah, mmdebstrap and runc)")
    return path


def containers_conf() -> Path:
    """podman's configuration for this machine (CONTAINERS_CONF): runc, and ulimits no higher
    than ours, which a container cannot raise."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
    path = cache_root() / "podman" / "containers.conf"
    text = (f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", '
            f'"nproc={NPROC}:{NPROC}"]\n\n[engine]\nruntime = "runc"\n')
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def podman(*args: str, check: bool = True, timeout: float = 900) -> (
    subprocess.CompletedProcess[str]
):
    """Run podman with this machine's configuration; raise ImageError with its output."""
    _tool("runc")
    result = subprocess.run([_tool("podman"), *args], capture_output=True, text=True,
                            check=False, timeout=timeout,
                            env=_env())
    if check and result.returncode != 0:
        raise ImageError(f"podman {' '.join(args[:3])} ... failed ({result.returncode}):\n"
                         f"{result.stderr[-4000:]}")
    return result


def _env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf())}




def _exists(reference: str) -> bool:
    return podman("image", "exists", reference, check=False).returncode == 0


@contextmanager
def _lock(name: str) -> Iterator[None]:
    """One build at a time per machine: a second test run waits, then finds the image."""
    path = cache_root() / "podman" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def local_ca_certificates() -> list[Path]:
    return sorted(LOCAL_CA_DIR.rglob("*.crt")) if LOCAL_CA_DIR.is_dir() else []


def base_image() -> str:
    """The Debian base, built once per package set and set of local CA certificates."""
    certs = local_ca_certificates()
    key = _digest([SUITE.encode(), " ".join(BASE_PACKAGES).encode(),
                   *(c.name.encode() + c.read_bytes() for c in certs)])
    reference = f"{BASE_REPOSITORY}:{SUITE}-{key}"
    with _lock("base"):
        if _exists(reference):
            return reference
        with tempfile.TemporaryDirectory(prefix="exocorp-base-") as tmp:
            rootfs = Path(tmp) / "rootfs.tar"
            argv = [_tool("mmdebstrap"), "--quiet", "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}"]
            if certs:
                argv += [f"--customize-hook=mkdir -p $1{LOCAL_CA_DIR}",
                         "--customize-hook=copy-in " + " ".join(map(str, certs))
                         + f" {LOCAL_CA_DIR}",
                         '--customize-hook=chroot "$1" update-ca-certificates']
            argv += [SUITE, str(rootfs)]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ImageError(f"mmdebstrap failed:\n{done.stderr[-4000:]}")
            bundle = "/etc/ssl/certs/ca-certificates.crt"
            podman("import",
                   "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                               "/sbin:/bin",
                   "--change", f"ENV SSL_CERT_FILE={bundle}",
                   "--change", f"ENV PIP_CERT={bundle}",
                   "--change", 'CMD ["python3.11"]',
                   str(rootfs), reference)
    return reference


def _context_files(repo: Path) -> list[Path]:
    files: list[Path] = []
    for name in CONTEXT:
        path = repo / name
        if path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file()
                      and not SKIPPED_PARTS & set(p.relative_to(repo).parts)
                      and p.suffix != ".pyc"]
        elif path.exists():
            files.append(path)
    return sorted(files)


def inputs_digest(repo: Path, base: str) -> str:
    """A hash of everything the build reads: the base, the Dockerfile and its context."""
    files = _context_files(repo)
    return _digest([base.encode(), *(str(f.relative_to(repo)).encode() + b"\0" + f.read_bytes()
                                     for f in files)])


def build_image(repo: Path) -> str:
    """The image of ``repo``'s Dockerfile, built unless an identical build is cached; older
    test builds are removed so they do not pile up."""
    base = base_image()
    reference = f"{IMAGE_REPOSITORY}:test-{inputs_digest(repo, base)}"
    with _lock("image"):
        if _exists(reference):
            return reference
        podman("build", "--network=host", "--pull=never",
               "--build-arg", f"PYTHON_IMAGE={base}",
               "--build-arg", f"VERSION={__version__}",
               "-t", reference, str(repo), timeout=1800)
        listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}",
                        "--filter", f"reference={IMAGE_REPOSITORY}").stdout.split()
        stale = [r for r in listed if r.startswith(f"{IMAGE_REPOSITORY}:test-")
                 and r != reference]
        if stale:
            podman("rmi", "--force", *stale, check=False)
    return reference


class ContainerService(ServiceProcess):
    """One of the platform's processes as a container of the image, in the foreground of a
    ``podman run`` we started (its output goes to our log), on the host network, the way the
    chart runs it: read-only root filesystem, a writable ``/tmp``, a numeric non-root user,
    every capability dropped, no privilege escalation."""

    def __init__(self, name: str, image: str, args: list[str], workdir: Path, port: int, *,
                 health_path: str, user: str = "65532:65532",
                 env: dict[str, str] | None = None,
                 mounts: dict[Path, str] | None = None) -> None:
        super().__init__(workdir, port=port, env={"CONTAINERS_CONF": str(containers_conf())})
        self.name = name
        self.health_path = health_path
        self.image = image
        self.args = args
        self.user = user
        self.container_env = env or {}
        self.mounts = mounts or {}
        self.container = f"exocorp-test-{name}-{workdir.name}"[:60]

    def argv(self) -> list[str]:
        argv = ["run", "--rm", "--replace", "--name", self.container, "--network=host",
                "--read-only", "--tmpfs=/tmp:rw,size=64m,mode=1777", f"--user={self.user}",
                "--cap-drop=ALL", "--security-opt=no-new-privileges", "--pull=never"]
        for key, value in self.container_env.items():
            argv.append(f"--env={key}={value}")
        for host, target in self.mounts.items():
            argv.append(f"--volume={host}:{target}")
        return [_tool("podman"), *argv, self.image, *self.args]

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.container).stdout.strip()

    def stop(self) -> None:
        """`podman stop`: SIGTERM to the process, as the kubelet sends, then the container is
        removed (``--rm``) and our ``podman run`` exits."""
        podman("stop", "--time", "15", self.container, check=False, timeout=60)
        super().stop()
        podman("rm", "--force", "--ignore", self.container, check=False, timeout=60)


def main() -> None:
    """`python -m exocorp.testing.image [TAG]`: build the image the way the tests do (no Docker,
    no registry) and tag it, by default ``exocorp:dev``."""
    import sys

    tag = sys.argv[1] if len(sys.argv) > 1 else "exocorp:dev"
    try:
        reference = build_image(Path.cwd())
        podman("tag", reference, tag)
    except ImageError as error:
        sys.exit(f"image: {error}")
    print(f"{tag} (= {reference})")


if __name__ == "__main__":
    main()
