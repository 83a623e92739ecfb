"""The Lambda package ships bytecode for the Lambda's Python version
(infra/package.py): unchecked-hash .pyc files, which Python uses whatever
the times an unzipped file carries, so a cold start compiles nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.package import compile_bytecode, lambda_interpreter, lambda_target


def test_modules_are_compiled_for_the_lambda_python(
    tmp_path: Path, sam_source: dict[str, object]
) -> None:
    python, _ = lambda_target(sam_source)  # type: ignore[arg-type]
    interpreter = lambda_interpreter(python)
    if interpreter is None:
        pytest.skip(f"no Python {python} on this machine to compile with")
    (tmp_path / "runtime" / "aws").mkdir(parents=True)
    (tmp_path / "runtime" / "aws" / "http.py").write_text("handler = 1\n")
    compile_bytecode(tmp_path, interpreter)

    (pyc,) = (tmp_path / "runtime" / "aws" / "__pycache__").iterdir()
    assert pyc.name == f"http.cpython-{python.replace('.', '')}.pyc"
    header = pyc.read_bytes()[:16]
    magic = subprocess.run(
        [interpreter, "-c", "import importlib.util, sys; "
         "sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert header[:4] == magic  # that version's bytecode
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source never checked


def test_an_interpreter_of_another_version_is_not_taken() -> None:
    assert lambda_interpreter("2.1") is None
