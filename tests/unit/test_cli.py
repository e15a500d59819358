"""The `exocorp` command as a person meets it: help that says what each option does and its
default, no reStructuredText in it, a fast `--help` (it imports no database or Kubernetes
library), and one clear line with a non-zero exit for wrong input, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exocorp.cli import build_parser

pytestmark = pytest.mark.unit


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_option_has_help_and_every_command_a_description() -> None:
    for prog, parser in _parsers(build_parser()):
        assert parser.description, f"{prog} has no description"
        for action in parser._actions:
            if action.option_strings and action.help != argparse.SUPPRESS:
                assert action.help, f"{prog} {action.option_strings[0]} has no help"
        text = parser.format_help()
        assert "``" not in text, f"{prog}: reStructuredText in help"
        assert ":class:" not in text, f"{prog}: reStructuredText in help"


def test_help_shows_defaults() -> None:
    text = dict(_parsers(build_parser()))["exocorp operator"].format_help()
    assert "(default: 16)" in text  # --workers
    assert "(default: info)" in text  # --log-level


def test_gateway_help_lists_processes_and_its_environment_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOCORP_PROCESSES", "3")
    parser = dict(_parsers(build_parser()))["exocorp gateway"]
    text = " ".join(parser.format_help().split())
    assert "--processes PROCESSES" in text
    assert "($EXOCORP_PROCESSES) (default: 3)" in text
    assert "--process-index" not in text  # set by the supervisor on its children only
    assert parser.parse_args([]).processes == 3


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exocorp.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


def test_help_imports_no_heavy_library() -> None:
    probe = ("import sys\nfrom exocorp import cli\ntry:\n    cli.main(['--help'])\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in ('sqlalchemy', 'aiohttp', 'kopf', 'pydantic',"
             " 'kubernetes_asyncio.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("args", "says"), [
    (["operator", "--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent: no such file"),
    (["gateway", "--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent: no such file"),
    (["dev", "--port", "70000"], "70000 is out of range"),
    (["gateway", "--port", "65536"], "65536 is out of range"),
    (["gateway", "--kubeconfig", "pyproject.toml", "--processes", "0"],
     "processes must be between 1 and 64"),
    (["gateway", "--kubeconfig", "pyproject.toml", "--processes", "2", "--port", "9091"],
     "port 9091 is among the metrics ports of the 2 processes"),
    (["platform-owner", "--email", "a@example.com", "--password-file", "/nonexistent"],
     "cannot read --password-file /nonexistent"),
])
def test_wrong_input_is_one_line_and_a_non_zero_exit(args: list[str], says: str) -> None:
    done = _run(*args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_no_cluster_at_all_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    done = subprocess.run([sys.executable, "-m", "exocorp.cli", "operator"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == ("exocorp operator: no cluster: pass --kubeconfig (or set "
                                   "$KUBECONFIG), or run inside a Kubernetes pod")
