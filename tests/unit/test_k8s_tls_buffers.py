"""Every TLS connection to the API server gets a 64 KiB read buffer, not asyncio's 256 KiB: the
operator holds one connection per watch plus a pool for requests, and at N = 1,000 those
buffers were about a sixth of its traced memory (bench/results/operator-memory-300.txt)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.plugins.offline_kubeconfig import offline_kubeconfig


def test_connections_opened_by_a_client_allocate_a_64_kib_tls_buffer(tmp_path: Path) -> None:
    kubeconfig = offline_kubeconfig(tmp_path)
    # A fresh interpreter: the buffer size is the process's, and other tests connect too.
    code = textwrap.dedent(f"""
        import asyncio, asyncio.sslproto, json, ssl
        from exocorp.k8s.client import Kube

        def allocated(loop):
            # What the event loop builds for each TLS connection it opens.
            protocol = asyncio.sslproto.SSLProtocol(loop, asyncio.Protocol(),
                                                    ssl.create_default_context(), None)
            return len(protocol._ssl_buffer)

        async def main():
            loop = asyncio.get_running_loop()
            before = allocated(loop)
            kube = await Kube.connect({str(kubeconfig)!r})
            after = allocated(loop)
            await kube.close()
            print(json.dumps([before, after]))

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert json.loads(out) == [256 * 1024, 64 * 1024]
