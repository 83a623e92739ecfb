"""The two descriptions of the AWS stack, as CloudFormation after SAM's
transform: template.yaml as `sam deploy` would send it, and the CDK app
(infra/app.py) synthesized in-process, as `cdk deploy` would; intrinsics
and DependsOn in one form.

Both are transformed offline by samtranslator (no credentials, no network:
a region-only boto3 session, and no managed policies to look up, since the
template writes its roles out). The functions' code location is the one
thing that differs by design (a local path for SAM's CLI, a CDK asset), so
each is checked and then replaced by one placeholder.
"""

from __future__ import annotations

import copy
import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CODE_PLACEHOLDER = {"Bucket": "code-bucket", "Key": "code.zip"}
INSTALL = "`make infra-deps` installs it (the pyproject extra `infra`)"


def need(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = f"{module} is missing ({e}): {INSTALL}"
    pytest.fail(missing, pytrace=False)


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """SAM's transform of `template`, offline (CloudFormation runs the same
    translator on deploy)."""
    boto3 = need("boto3")
    need("samtranslator")
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    session = boto3.session.Session(region_name="us-east-1")
    translator = Translator(None, Parser(), boto_session=session)
    out: dict[str, Any] = translator.translate(
        copy.deepcopy(template), parameter_values={}, get_managed_policy_map=dict
    )
    return dict(canonical(out))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def canonical(node: Any) -> Any:
    """`node` in one of the forms CloudFormation takes as the same: each
    Fn::GetAtt as a list ("Table.Arn" is ["Table", "Arn"]; CfnInclude keeps
    the string inside policy documents, the YAML parser makes lists), each
    DependsOn a sorted list (the CDK sorts it)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::GetAtt"} and isinstance(node["Fn::GetAtt"], str):
            return {"Fn::GetAtt": node["Fn::GetAtt"].split(".", 1)}
        out = {k: canonical(v) for k, v in node.items()}
        if "DependsOn" in out and "Type" in out:
            out["DependsOn"] = sorted(as_list(out["DependsOn"]))
        return out
    if isinstance(node, list):
        return [canonical(v) for v in node]
    return node


def load_yaml(path: Path) -> dict[str, Any]:
    need("samtranslator")
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(path.read_text())
    return parsed


@pytest.fixture(scope="session")
def sam_source() -> dict[str, Any]:
    """template.yaml as written (SAM resources, Globals, short-form tags parsed)."""
    return load_yaml(TEMPLATE)


@pytest.fixture(scope="session")
def sam_template(sam_source: dict[str, Any]) -> dict[str, Any]:
    """template.yaml after SAM's transform, the code at the placeholder."""
    template = copy.deepcopy(sam_source)
    code = template["Globals"]["Function"]["CodeUri"]
    assert code == "build/lambda", "the functions run the package of `make lambda-package`"
    template["Globals"]["Function"]["CodeUri"] = CODE_PLACEHOLDER
    return sam_transform(template)


class CdkSynth:
    def __init__(
        self, template: dict[str, Any], assets: dict[str, Any], code: Path, outdir: Path
    ) -> None:
        self.template = template
        self.assets = assets
        self.code = code
        self.outdir = outdir


@pytest.fixture(scope="session")
def cdk_synth(tmp_path_factory: pytest.TempPathFactory) -> CdkSynth:
    """infra/app.py's stack, synthesized in-process (aws-cdk-lib through jsii,
    which runs on Node.js), with a small stand-in for the Lambda package."""
    if shutil.which("node") is None:
        pytest.fail(
            "Node.js is missing (node on PATH): aws-cdk-lib runs on it through jsii. "
            f"Install Node.js 20+ (see README); aws-cdk-lib itself: {INSTALL}",
            pytrace=False,
        )
    cdk = need("aws_cdk")
    from infra.app import build_stack

    code = tmp_path_factory.mktemp("code")
    (code / "index.py").write_text("def handler(event, context):\n    return None\n")
    out = tmp_path_factory.mktemp("cdk.out")
    # The context the CLI gives the app (infra/cdk.json), so the synth is the same.
    context = json.loads((ROOT / "infra" / "cdk.json").read_text()).get("context", {})
    app = cdk.App(outdir=str(out), context=context)
    stack = build_stack(app, code)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    assets = json.loads((out / f"{stack.stack_name}.assets.json").read_text())
    return CdkSynth(artifact.template, assets, code, out)


@pytest.fixture(scope="session")
def cdk_template(cdk_synth: CdkSynth) -> dict[str, Any]:
    """The CDK stack after SAM's transform, the code at the placeholder and
    the CDK's bootstrap-version check (parameter and rule) left out."""
    template = copy.deepcopy(cdk_synth.template)
    template["Parameters"].pop("BootstrapVersion")
    template.get("Rules", {}).pop("CheckBootstrapVersion")
    if not template.get("Rules"):
        template.pop("Rules", None)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = CODE_PLACEHOLDER
    template["Globals"]["Function"]["CodeUri"] = CODE_PLACEHOLDER
    return sam_transform(template)
