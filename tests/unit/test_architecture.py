"""The import rules of ../shared/ARCHITECTURE.md, checked on every run so the layering cannot rot."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _modules(package: str) -> Iterator[Path]:
    for path in sorted((ROOT / package).rglob("*.py")):
        if not path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            yield path


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    package_parts = path.relative_to(ROOT).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the module's package
                base = package_parts[: len(package_parts) - node.level + 1]
                yield ".".join((*base, node.module or ""))
            elif node.module:
                yield node.module


def _violations(package: str, allowed: callable) -> list[str]:  # type: ignore[valid-type]
    return [f"{path.relative_to(ROOT)} imports {name}" for path in _modules(package)
            for name in _imports(path) if not allowed(name)]


def _top(name: str) -> str:
    return name.split(".")[0]


def test_cluster_never_imports_broker() -> None:
    assert _violations("cluster", lambda name: _top(name) != "broker") == []


def test_storage_imports_neither_cluster_nor_broker() -> None:
    assert _violations("storage", lambda name: _top(name) not in {"broker", "cluster"}) == []


def test_model_is_pure() -> None:
    """broker/model: standard library (minus I/O, clocks and global randomness), storage protocols, itself."""
    forbidden_stdlib = {"asyncio", "socket", "time", "random", "os", "threading", "subprocess", "select",
                        "selectors", "datetime", "uuid", "secrets", "io", "pathlib", "shutil", "tempfile"}

    def allowed(name: str) -> bool:
        top = _top(name)
        if top in STDLIB:
            return top not in forbidden_stdlib
        return top == "storage" or name == "broker.model" or name.startswith("broker.model.")

    assert _violations("broker/model", allowed) == []


def test_front_ends_hold_no_queue_semantics() -> None:
    """Protocol front ends reach the model only through its errors; semantics stay in the model."""

    def allowed(name: str) -> bool:
        return not name.startswith("broker.model") or name == "broker.model.errors"

    assert _violations("broker/aws", allowed) == []
    assert _violations("broker/http", allowed) == []


def test_benchmarks_talk_to_the_server_over_the_network_only() -> None:
    # broker.client is the gRPC client we ship, a network client like boto3: benchmarks.clientloop measures it.
    assert _violations("benchmarks", lambda name: _top(name) not in {"broker", "cluster", "storage"}
                       or name == "broker.client" or name.startswith("broker.client.")) == []


@pytest.mark.parametrize("package", ["broker", "cluster", "storage", "benchmarks"])
def test_checker_sees_the_packages(package: str) -> None:
    assert list(_modules(package)), f"no modules found under {package}: the checks above would pass vacuously"
