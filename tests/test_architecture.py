"""The layout's rules, checked on the source itself (docs/architecture.md): SQL only in
`stores/` and `db/`, no module too long to read, and the import contract that keeps routes
away from the stores — shown to fail when a route imports one."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tenantgraph"
SQL_HOMES = ("stores", "db")
MAX_LINES = 450
# A statement, not prose: the verb and the clause that must follow it.
SQL = re.compile(
    r"\b(SELECT\b[\s\S]+\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX|FUNCTION)|set_config\s*\()",
    re.IGNORECASE,
)


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _outside_sql_homes(path: Path) -> bool:
    return path.relative_to(PACKAGE).parts[0] not in SQL_HOMES


def _sql_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings and SQL.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    return found


CONNECTIONS = frozenset({"conn", "connection", "cur", "cursor", "tenant_conn"})


def _execute_calls(path: Path) -> list[str]:
    """`conn.execute(…)`-style calls: a database connection used outside the stores (a
    Valkey pipeline's or the executor's `execute` is not one)."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("execute", "executemany")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in CONNECTIONS
    ]


def test_the_detectors_see_sql_and_connections() -> None:
    """Positive control: the checks find the statements and calls the stores hold."""
    stores = [p for p in _sources() if not _outside_sql_homes(p)]
    assert sum(len(_sql_strings(p)) for p in stores) > 50
    assert sum(len(_execute_calls(p)) for p in stores) > 50
    assert not SQL.search("select the run, then update its status")


def test_no_sql_outside_stores_and_db() -> None:
    found = [s for p in _sources() if _outside_sql_homes(p) for s in _sql_strings(p)]
    assert found == []


def test_no_connection_use_outside_stores_and_db() -> None:
    found = [c for p in _sources() if _outside_sql_homes(p) for c in _execute_calls(p)]
    assert found == []


def test_no_source_module_is_over_the_size_limit() -> None:
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines()) for p in _sources()}
    assert max(sizes.values()) > 100  # the count is of real modules
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            "--config",
            str(ROOT / "pyproject.toml"),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layer_contract_holds() -> None:
    result = _lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("api/threads.py", "from tenantgraph.stores import threads as _store"),
        ("api/runs.py", "from tenantgraph.db import database as _db"),
        ("stores/threads.py", "from tenantgraph.services import threads as _service"),
        ("stores/runs.py", "from tenantgraph.db.database import Database as _Database"),
        ("runtime/worker.py", "from tenantgraph import resources as _resources"),
        ("settings.py", "from tenantgraph import scope as _scope"),
    ],
)
def test_the_layer_contract_fails_on_an_import_that_runs_back_up(
    tmp_path: Path, module: str, imported: str
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "tenantgraph", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "tenantgraph" / module
    target.write_text(target.read_text() + f"\n{imported}  # noqa\n")
    result = _lint_imports(copy)
    importer = "tenantgraph." + module.removesuffix(".py").replace("/", ".")
    assert result.returncode != 0
    assert f"{importer} -> " in result.stdout
