"""The Dockerfile, checked statically (there is no container engine on these machines): a slim
multi-stage build of the locked dependencies, a numeric non-root user, no build tools in the
final image, OCI labels, the `exocorp` entrypoint, and a build context that holds what the build
copies and nothing private."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|libpq-dev|libffi-dev|"
    r"apt-get\s+install|apk\s+add|pip\s+install|uv\s+(pip|sync))\b")
OCI_LABELS = ("title", "description", "version", "revision", "created", "source", "licenses")


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse((REPO / "Dockerfile").read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_multi_stage_build_on_slim_python_3_11(stages: list[Stage], final: Stage) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    assert final.name is None or final.name != stages[0].name


def test_builder_installs_exactly_the_locked_runtime_dependencies(stages: list[Stage]) -> None:
    builder = stages[0]
    runs = " ".join(builder.all("RUN"))
    assert "uv sync --frozen --no-dev" in runs
    assert "--no-editable" in runs, "an editable install would point into /src, absent later"
    uv_version = re.search(r"UV_VERSION := (\S+)", (REPO / "Makefile").read_text())
    assert uv_version is not None
    assert any(f"ARG UV_VERSION={uv_version.group(1)}" == f"ARG {a}" for a in builder.all("ARG"))


def test_final_stage_has_no_build_tools_and_copies_only_the_environment(final: Stage) -> None:
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run), f"build tooling in the final stage: {run}"
    copies = final.all("COPY")
    assert copies, "the final stage copies nothing"
    for copy in copies:
        assert copy.startswith("--from="), f"final stage copies from the context: {copy}"
    assert any("/opt/exocorp" in c for c in copies)


def test_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.all("USER")
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit()
    assert int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)
    values = (REPO / "charts" / "exocorp" / "values.yaml").read_text()
    assert f"runAsUser: {user}" in values, "chart and image disagree on the user"
    # The user comes last: nothing after it runs as root.
    keywords = [i.keyword for i in final.instructions]
    assert "RUN" not in keywords[keywords.index("USER"):]


def test_oci_labels_describe_the_image(final: Stage) -> None:
    labels = " ".join(final.all("LABEL"))
    for name in OCI_LABELS:
        assert f"org.opencontainers.image.{name}=" in labels, name


def test_entrypoint_is_the_exocorp_console_script(final: Stage) -> None:
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["exocorp"], "exec form, so signals reach the process"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "exocorp" in scripts
    env = " ".join(final.all("ENV"))
    assert "PATH=/opt/exocorp/bin:" in env


def test_probes_are_documented_instead_of_a_healthcheck(final: Stage) -> None:
    assert not final.all("HEALTHCHECK")
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile
    assert "probes" in dockerfile
    doc = (REPO / "docs" / "deployment.md").read_text()
    for endpoint in ("/healthz", "/readyz"):
        assert endpoint in doc


# --- build context ---------------------------------------------------------------------------

def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent directory
    excludes everything below it; `!` re-includes."""
    def matches(pattern: str, candidate: str) -> bool:
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        return re.fullmatch(regex, candidate) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        if any(matches(pattern, p) for p in prefixes):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_copied_source_exists_and_is_in_the_build_context(
    stages: list[Stage], ignore_patterns: list[str],
) -> None:
    sources = []
    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            words = [w for w in copy.split() if not w.startswith("--")]
            sources += words[:-1]
    assert {"pyproject.toml", "uv.lock", "README.md", "exocorp"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert not dockerignore_excludes(ignore_patterns, source), f"{source} is .dockerignored"
    for module in ("exocorp/cli.py", "exocorp/__init__.py", "exocorp/names.py"):
        assert not dockerignore_excludes(ignore_patterns, module)


@pytest.mark.parametrize("path", [
    ".git/config", ".venv/bin/python", "tests/unit/test_dockerfile.py", "exocorp/__pycache__/x.pyc",
    "docs/deployment.md", "charts/exocorp/values.yaml", ".mypy_cache/3.11/x.json",
    "exocorp.egg-info/PKG-INFO", "dev.kubeconfig", "sub/.env",
])
def test_private_and_irrelevant_files_stay_out_of_the_context(
    ignore_patterns: list[str], path: str,
) -> None:
    assert dockerignore_excludes(ignore_patterns, path)


def test_the_dockerignore_matcher_follows_docker_rules() -> None:
    patterns = ["docs", "**/*.pyc", "build", "!build/keep.txt"]
    assert dockerignore_excludes(patterns, "docs/a/b.md")
    assert dockerignore_excludes(patterns, "a/b/c.pyc")
    assert not dockerignore_excludes(patterns, "documentation/x")
    assert dockerignore_excludes(patterns, "build/other")
    assert not dockerignore_excludes(patterns, "build/keep.txt")
