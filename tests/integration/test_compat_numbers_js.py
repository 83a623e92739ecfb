"""The int/number boundary through the official clients, on both shells: a
Python function that writes plain ints where the schema says `v.number()`
stores float64s, so the JS client reads JS numbers (and BigInts only where
the schema says `v.int64()`), and the Python client reads floats."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from convex import ConvexInt64
from convex.http_client import ConvexHttpClient

from tests.support.shells import Backend, app_on_shell

JS = Path(__file__).resolve().parents[1] / "js"
APP = Path(__file__).parent / "apps" / "compat_paging"


@pytest.fixture(scope="module")
def numbers(
    shell: str, dynamodb_for: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from app_on_shell(APP, "numbers", shell, dynamodb_for, tmp_path_factory)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_js_client_reads_numbers_where_the_schema_says_number(numbers: Backend) -> None:
    done = subprocess.run(
        ["node", "compat_numbers.mjs", numbers.url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    got = json.loads(done.stdout)
    assert got["added"] == {
        "score": "number 0",
        "count": "bigint 3",
        "either": "bigint 5",  # v.union(v.int64(), v.number()): int64 takes it as it is
        "history": ["number 1", "number 2.5"],
        "extra": {"weight": "number 2"},
    }
    assert got["bumped"]["score"] == "number 7" and got["bumped"]["history"] == ["number 4"]
    assert got["howMany"].startswith("number ") and got["twice"] == "number 42"


def test_python_client_reads_floats_where_the_schema_says_number(numbers: Backend) -> None:
    client = ConvexHttpClient(numbers.url)
    doc_id = client.mutation("scores:add", {})
    doc = client.query("scores:get", {"id": doc_id})
    assert doc["score"] == 0.0 and type(doc["score"]) is float
    assert doc["count"] == ConvexInt64(3)
    assert type(doc["history"][0]) is float and type(doc["extra"]["weight"]) is float
    how_many = client.query("scores:how_many", {})
    assert type(how_many) is float and how_many >= 1.0
    assert client.query("scores:twice", {"n": ConvexInt64(21)}) == 42.0  # int64 in: float64 out
