"""The container image, built from the repository's Dockerfile and run as the chart runs it.

The image is built with podman on a base made of Debian packages (exocorp/testing/image.py;
cached by a hash of every build input, so only a change rebuilds it). Both processes then run as
containers of it against the session's control plane: the chart's arguments and environment
(rendered by `helm template`), a read-only root filesystem with a writable /tmp, the chart's
numeric non-root user, the chart's RBAC (each process authenticates with its ServiceAccount's
token where a pod would use the mounted one). A user signs up through the containerised gateway
and provisions an exocorp; the containerised operator brings it to Running and destroys it; both
containers stop cleanly on SIGTERM.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from exocorp import __version__
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.testing import samples
from exocorp.testing.controlplane import free_port
from exocorp.testing.image import ContainerService, build_image, podman
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.http_journey import RecordingApi, sign_up_and_provision
from tests.plugins.monitoring import REPO, Obj, helm_template, service_account_kubeconfig

pytestmark = pytest.mark.integration

RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
CREDENTIAL = "sk-image-test-4b7e21"
KUBECONFIG_IN_CONTAINER = "/etc/exocorp/kubeconfig"


@pytest.fixture(scope="module")
def image() -> str:
    return build_image(REPO)


@dataclass
class Release:
    """The chart rendered for one namespace, with its RBAC applied to the cluster."""

    name: str
    namespace: str
    objects: list[Obj]

    @property
    def fullname(self) -> str:
        return f"{self.name}-exocorp"

    def container(self, component: str) -> Obj:
        for obj in self.objects:
            if obj["kind"] == "Deployment" \
                    and obj["metadata"]["name"] == f"{self.fullname}-{component}":
                spec = obj["spec"]["template"]["spec"]
                container: Obj = spec["containers"][0]
                return container
        raise AssertionError(f"no {component} Deployment rendered")


def _kubectl_apply(cluster: ClusterInfo, objects: list[Obj], *args: str) -> None:
    subprocess.run([str(cluster.kubectl), f"--kubeconfig={cluster.kubeconfig}", *args,
                    "-f", "-"], input=yaml.safe_dump_all(objects), text=True, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def release(cluster: ClusterInfo, crds: None, image: str) -> Iterator[Release]:
    name = f"img-{uuid.uuid4().hex[:6]}"
    namespace = name
    repository, _, tag = image.rpartition(":")
    objects = helm_template(release=name, namespace=namespace, sets=[
        f"image.repository={repository}", f"image.tag={tag}", "gateway.cookieSecure=false",
        "crds.enabled=false"])
    rbac = [o for o in objects if o["kind"] in RBAC_KINDS]
    _kubectl_apply(cluster, [{"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace,
                                           "labels": {"exocorp.io/test": "1"}}}], "apply")
    _kubectl_apply(cluster, rbac, "apply")
    try:
        yield Release(name, namespace, objects)
    finally:
        cluster_scoped = [o for o in rbac if o["kind"].startswith("Cluster")]
        _kubectl_apply(cluster, cluster_scoped, "delete", "--ignore-not-found")
        _kubectl_apply(cluster, [{"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": namespace}}],
                       "delete", "--wait=false", "--ignore-not-found")


def _token_kubeconfig(cluster: ClusterInfo, release: Release, component: str,
                      workdir: Path) -> Path:
    """The ServiceAccount's token with the cluster's CA inlined, readable by the container's
    user only: what a pod finds in its mounted service-account volume."""
    path = service_account_kubeconfig(cluster.kubectl, cluster.kubeconfig, release.namespace,
                                      f"{release.fullname}-{component}",
                                      workdir / f"{component}.kubeconfig")
    config = yaml.safe_load(path.read_text())
    entry = config["clusters"][0]["cluster"]
    ca = Path(entry.pop("certificate-authority")).read_bytes()
    entry["certificate-authority-data"] = base64.b64encode(ca).decode()
    path.write_text(yaml.safe_dump(config))
    os.chown(path, 65532, 65532)
    return path


def _chart_env(container: Obj, pod_name: str, namespace: str) -> dict[str, str]:
    """The container's environment as the kubelet would set it (field references resolved)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "resourceFieldRef" in source:  # e.g. limits.memory, in bytes as the kubelet gives it
            kind, resource = source["resourceFieldRef"]["resource"].split(".")
            env[item["name"]] = str(_bytes(container["resources"][kind][resource]))
            continue
        path = source["fieldRef"]["fieldPath"]
        env[item["name"]] = {"metadata.namespace": namespace, "metadata.name": pod_name}[path]
    return env


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity.removesuffix(suffix)) * factor)
    return int(quantity)


def _user(container: Obj) -> str:
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    return f"{context['runAsUser']}:{context['runAsGroup']}"


def _with_port(args: list[str], option: str, port: int) -> list[str]:
    """The chart's arguments with its port replaced by a free one: the containers share the
    host's network with the other tests of this machine."""
    replaced = [f"{option}={port}" if a.startswith(f"{option}=") else a for a in args]
    assert replaced != args, f"the chart sets no {option}"
    return replaced


def _container(release: Release, component: str, image: str, workdir: Path, *,
               option: str, health: str, extra_args: tuple[str, ...] = (),
               mounts: dict[Path, str] | None = None,
               cluster: ClusterInfo) -> ContainerService:
    spec = release.container(component)
    port = free_port()
    args = _with_port(spec["args"], option, port)
    # Loopback instead of every address: nothing outside this machine reaches the test.
    args = [{"--host=0.0.0.0": "--host=127.0.0.1",
             "--metrics-host=0.0.0.0": "--metrics-host=127.0.0.1"}.get(a, a) for a in args]
    kubeconfig = _token_kubeconfig(cluster, release, component, workdir)
    return ContainerService(
        component, image, [*args, *extra_args], workdir / component, port,
        health_path=health, user=_user(spec),
        env={**_chart_env(spec, f"{component}-{release.name}", release.namespace),
             "KUBECONFIG": KUBECONFIG_IN_CONTAINER},
        mounts={kubeconfig: f"{KUBECONFIG_IN_CONTAINER}:ro", **(mounts or {})})


@pytest.fixture(scope="module")
def operator_container(cluster: ClusterInfo, release: Release, image: str,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerService]:
    # A higher peering priority than any operator this session started: they pause meanwhile,
    # so whatever reconciles exocorps now is the container.
    service = _container(release, "operator", image, tmp_path_factory.mktemp("operator"),
                         option="--metrics-port", health="/readyz",
                         extra_args=("--priority=200",), cluster=cluster)
    service.start(timeout=180)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def gateway_container(cluster: ClusterInfo, release: Release, image: str,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContainerService]:
    workdir = tmp_path_factory.mktemp("gateway")
    data = workdir / "data"  # the chart's SQLite volume
    data.mkdir()
    os.chown(data, 65532, 65532)
    # No platform owner is installed here, so signup is opened as an extra argument (the chart's
    # extraArgs); a later flag wins over the chart's --signup-requires-owner.
    service = _container(release, "gateway", image, workdir, option="--port",
                         health="/readyz", mounts={data: "/var/lib/exocorp"}, cluster=cluster,
                         extra_args=("--no-signup-requires-owner",
                                     f"--metrics-port={free_port()}"))
    service.start(timeout=180)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
async def http(gateway_container: ContainerService) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=gateway_container.url,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def test_the_image_carries_its_version_and_runs_as_the_chart_says(image: str) -> None:
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}",
                               image).stdout)
    assert labels["org.opencontainers.image.version"] == __version__
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "65532:65532"
    version = podman("run", "--rm", "--read-only", "--network=none", image, "--version")
    assert version.stdout.strip() == f"exocorp {__version__}"


async def test_an_exocorp_provisioned_through_the_gateway_container_runs_and_is_destroyed(
    kube: Kube, release: Release, operator_container: ContainerService,
    gateway_container: ContainerService, http: aiohttp.ClientSession,
) -> None:
    for service in (operator_container, gateway_container):
        assert service.inspect("{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}") \
            == "true 65532:65532"
    await kube.apply(r.RELEASES, samples.release("1.0.0"))
    api = RecordingApi(http)
    first = await sign_up_and_provision(api, "img", "Image test", CREDENTIAL)
    slug, created = first.slug, first.created

    async def company() -> Any:
        return await api.call("GET", f"/api/registry/companies/{slug}", 200)

    await eventually(company, lambda c: c["phase"] == "Running", within=180, what="Running")
    exocorp = await kube.get(r.EXOCORPS, created["id"])
    assert exocorp["status"]["phase"] == "Running"

    await api.call("DELETE", f"/api/registry/companies/{slug}", 202, json={"confirm": slug})

    await eventually(lambda: api.status(f"/api/registry/companies/{slug}"), lambda s: s == 404,
                     within=180, what="destroyed")
    assert await kube.get_or_none(r.EXOCORPS, created["id"]) is None

    # The container, not another operator, did it: its log names the exocorp it tore down.
    async def operator_log() -> str:
        return operator_container.log.read_text()

    await eventually(operator_log, lambda text: f"exocorp {created['id']} destroyed" in text,
                     within=30, what="the container's log of the teardown")
    assert "exocorp_operator" in operator_container.metrics()
    assert not any(CREDENTIAL in body for body in api.bodies)

    for service in (gateway_container, operator_container):
        service.stop()
        log = service.log.read_text()
        assert "Traceback" not in log, log[-3000:]
        assert CREDENTIAL not in log
    assert "shutting down" in gateway_container.log.read_text()
