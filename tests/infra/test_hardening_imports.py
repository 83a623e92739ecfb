"""Import boundaries (pyproject.toml's [tool.importlinter] contracts): sqlite3
only in the SQLite adapter, boto3/botocore only in the DynamoDB adapter and
the AWS shells, no shell imported by the core, the Lambda handlers
independent of the local harness.

`make check` runs `lint-imports` too; this test is what CI runs (`make
test`), and it also shows that each contract catches what it forbids: a
copy of the tree with violations planted fails with the contract named.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(
            f"{LINT_IMPORTS} is missing: import-linter is in the `dev` extra (make venv)",
            pytrace=False,
        )
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(root / "pyproject.toml")],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_import_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


VIOLATIONS = {
    # file -> (source, the contract it breaks)
    "runtime/values/uses_sqlite.py": ("import sqlite3\n", "sqlite3 only in the SQLite adapter"),
    "runtime/database/uses_boto3.py": (
        "import boto3\n",
        "boto3 and botocore only in the DynamoDB adapter and the AWS shells",
    ),
    "runtime/functions/uses_powertools.py": (
        "from aws_lambda_powertools import Logger\n",
        "the Lambda libraries only in the AWS shell",
    ),
    "runtime/sync/uses_http.py": (
        "def late():\n    from runtime.http import api\n",
        "the core imports no shell",
    ),
    "runtime/functions/uses_sync.py": (
        "from runtime.sync import hub\n",
        "the core's layers: sync over functions over the database",
    ),
    "runtime/aws/uses_emulator.py": (
        "from runtime.emulator import gateway\n",
        "the Lambda handlers do not need the local harness",
    ),
}


def test_each_contract_catches_what_it_forbids(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(
        ROOT / "runtime", root / "runtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for path, (source, _) in VIOLATIONS.items():
        (root / path).write_text(source)

    done = lint_imports(root)

    assert done.returncode != 0
    assert f"Contracts: 0 kept, {len(VIOLATIONS)} broken." in done.stdout, done.stdout
    for path, (_, contract) in VIOLATIONS.items():
        module = path.removesuffix(".py").replace("/", ".")
        assert f"{contract}" in done.stdout and module in done.stdout, (path, done.stdout)
