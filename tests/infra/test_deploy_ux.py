"""Deploying without surprises: `make deploy` checks the AWS credentials
before anything else, and the Lambda package takes an app kept outside the
repository (FUNCTIONS=DIR)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.package import copy_sources
from runtime.aws.credentials import CredentialsError, caller_identity
from tests.infra.conftest import ROOT


def _no_aws_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


@pytest.mark.parametrize(
    ("extra", "said"),
    [({"AWS_REGION": "eu-west-1"}, "no AWS credentials"), ({}, "no AWS region")],
)
def test_make_deploy_without_credentials_stops_first_with_one_line(
    tmp_path: Path, extra: dict[str, str], said: str
) -> None:
    done = subprocess.run(
        ["make", "-s", "deploy", "STACK=nothing-here"],
        cwd=ROOT,
        env=_no_aws_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("deploy:")]
    assert len(lines) == 1 and said in lines[0], done.stderr
    assert "AWS_PROFILE" in lines[0]  # says how to supply them
    assert "sam" not in done.stdout.lower()  # nothing was built or deployed


def test_credentials_that_work_name_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        who = caller_identity(boto3.Session())
    assert who["region"] == "eu-west-1"
    assert who["account"].isdigit() and who["arn"].startswith("arn:aws:")


def test_no_credentials_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in _no_aws_env(tmp_path, AWS_REGION="eu-west-1").items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    with pytest.raises(CredentialsError, match="no AWS credentials"):
        caller_identity(boto3.Session())


def test_the_package_takes_an_app_kept_outside_the_repository(tmp_path: Path) -> None:
    app = tmp_path / "elsewhere" / "my_app"
    app.mkdir(parents=True)
    (app / "notes.py").write_text("# the app\n")
    dest = tmp_path / "pkg"
    copy_sources(dest, functions=app)
    assert sorted(p.name for p in (dest / "functions").iterdir()) == ["notes.py"]
    assert (dest / "runtime" / "aws" / "http.py").is_file()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_functions_path_that_is_no_app_is_refused(tmp_path: Path, kind: str) -> None:
    app = tmp_path / "app"
    if kind == "empty":
        app.mkdir()
    with pytest.raises(SystemExit, match=r"FUNCTIONS=DIR|no \.py files"):
        copy_sources(tmp_path / "pkg", functions=app)
