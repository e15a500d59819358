"""One version, single-sourced in exocorp/__init__.py: the installed package, `exocorp
--version`, the chart's version and appVersion, the image's version label (its default; the
integration test reads the built image's), `make version` and the newest CHANGELOG entry agree."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
import yaml

from exocorp import __version__

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")


def test_the_version_is_semver_and_the_package_metadata_takes_it() -> None:
    assert SEMVER.fullmatch(__version__)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"], "a second, static version"
    assert pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "exocorp.__version__"}
    assert installed_version("exocorp") == __version__


def test_the_command_reports_it() -> None:
    out = subprocess.run([sys.executable, "-m", "exocorp.cli", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"exocorp {__version__}"


def test_the_chart_version_and_app_version_are_it() -> None:
    chart = yaml.safe_load((REPO / "charts" / "exocorp" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (__version__, __version__)


def test_the_image_label_defaults_to_it_and_make_passes_it() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG VERSION={__version__}\n" in dockerfile
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
    made = subprocess.run(["make", "-s", "--no-print-directory", "version"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout
    assert made.strip() == __version__


def test_the_changelog_has_an_entry_for_it() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"(?m)^## \[([^\]]+)\]", changelog)
    assert releases[0] == "Unreleased"
    assert releases[1] == __version__
    assert f"[{__version__}]: " in changelog  # the link reference of keep-a-changelog
