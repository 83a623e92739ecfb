"""The Lambda package build (infra/package.py): what it installs, for which
platform, and the sources it copies. The pip steps themselves run in `make
lambda-package` (they fetch wheels); these parts run offline."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra.package import copy_sources, lambda_target, requirements
from tests.infra.conftest import ROOT


def test_the_package_holds_the_project_dependencies() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        declared = tomllib.load(f)["project"]["dependencies"]
    assert requirements() == declared
    assert any(r.startswith("mangum") for r in declared), "the HTTP handler's adapter"


def test_wheels_are_for_the_template_runtime_and_architecture(sam_source: dict[str, Any]) -> None:
    python, platform = lambda_target(sam_source)
    fn = sam_source["Globals"]["Function"]
    assert f"python{python}" == fn["Runtime"]
    arch = {"arm64": "aarch64", "x86_64": "x86_64"}[fn["Architectures"][0]]
    assert platform == f"manylinux2014_{arch}"


@pytest.mark.parametrize(
    "function",
    [{"Runtime": "nodejs20.x"}, {"Runtime": "python3.12", "Architectures": ["arm64", "x86_64"]}],
)
def test_a_template_the_build_cannot_serve_is_an_error(function: dict[str, Any]) -> None:
    with pytest.raises(SystemExit, match=r"Globals\.Function"):
        lambda_target({"Globals": {"Function": function}})


def test_sources_are_copied_afresh_without_caches(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "runtime" / "aws" / "__pycache__").mkdir(parents=True)
    (root / "runtime" / "aws" / "http.py").write_text("handler = None\n")
    (root / "runtime" / "aws" / "__pycache__" / "http.cpython-311.pyc").write_bytes(b"\0")
    (root / "functions").mkdir()
    (root / "functions" / "bank.py").write_text("# app\n")
    dest = tmp_path / "pkg"
    (dest / "runtime").mkdir(parents=True)
    (dest / "runtime" / "removed.py").write_text("# deleted from the repo since\n")
    (dest / "boto3").mkdir()  # an installed dependency: kept

    copy_sources(dest, root)

    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["functions/bank.py", "runtime/aws/http.py"]
    assert (dest / "boto3").is_dir()


def test_the_local_aws_harness_is_left_out_of_the_lambda_package(tmp_path: Path) -> None:
    """`python -m runtime aws-local` (runtime/emulator) is a developer's command,
    not Lambda code: the package copies the handlers but not the harness."""
    dest = tmp_path / "pkg"
    copy_sources(dest)

    assert (dest / "runtime" / "aws" / "http.py").is_file()
    assert (dest / "runtime" / "aws" / "settings.py").is_file()
    assert (ROOT / "runtime" / "emulator" / "main.py").is_file()
    assert not (dest / "runtime" / "emulator").exists()
    assert not any(p.name == "emulator" for p in dest.rglob("*"))
