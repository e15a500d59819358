"""exocorp.lazy_kubernetes: kubernetes_asyncio without its generated classes until asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.plugins.offline_kubeconfig import offline_kubeconfig


def _run(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_the_operator_and_its_client_import_without_the_generated_classes(tmp_path: Path) -> None:
    kubeconfig = offline_kubeconfig(tmp_path)
    result = _run(f"""
        import asyncio, json, sys
        import exocorp.operator.main  # kopf, our client, the handlers
        from exocorp.k8s.client import load_configuration
        config = asyncio.run(load_configuration({str(kubeconfig)!r}))
        models = [m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models.")]
        apis = [m for m in sys.modules if m.startswith("kubernetes_asyncio.client.api.")]
        print(json.dumps({{"host": config.host, "models": sorted(models), "apis": apis}}))
    """)
    assert result["host"] == "https://127.0.0.1:6443"
    # kopf asks for these two; nothing else of the ~700 models or ~60 API classes is loaded.
    assert result["models"] == ["kubernetes_asyncio.client.models.v1_object_meta",
                                "kubernetes_asyncio.client.models.v1_owner_reference"]
    assert result["apis"] == []


def test_every_name_of_the_library_still_imports() -> None:
    result = _run("""
        import json
        import exocorp
        from kubernetes_asyncio.client import ApiClient, CoreV1Api, V1Pod, rest
        from kubernetes_asyncio.client.models import V1Deployment
        import kubernetes_asyncio
        from kubernetes_asyncio import watch
        print(json.dumps({"names": [ApiClient.__name__, CoreV1Api.__name__, V1Pod.__name__,
                                    rest.__name__, V1Deployment.__name__, watch.__name__,
                                    kubernetes_asyncio.__version__]}))
    """)
    assert result["names"] == ["ApiClient", "CoreV1Api", "V1Pod", "kubernetes_asyncio.client.rest",
                               "V1Deployment", "kubernetes_asyncio.watch", "36.1.0"]
