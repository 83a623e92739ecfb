"""The CDK app and template.yaml deploy the same stack: after SAM's
transform, the same resources (logical ids, types, every property), the
same parameters, conditions and outputs; the CDK adds only its code asset
and its bootstrap-version check."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import CdkSynth


def test_the_cdk_app_deploys_the_template_resources(
    sam_template: dict[str, Any], cdk_template: dict[str, Any]
) -> None:
    assert set(cdk_template["Resources"]) == set(sam_template["Resources"])
    for rid, resource in sam_template["Resources"].items():
        assert cdk_template["Resources"][rid] == resource, rid
    for section in ("Parameters", "Conditions", "Outputs", "Description"):
        assert cdk_template.get(section) == sam_template.get(section), section
    assert set(cdk_template) == set(sam_template)


def test_the_functions_run_the_package_as_a_cdk_asset(cdk_synth: CdkSynth) -> None:
    """Every function's CodeUri is the one zip asset, made of the package directory."""
    zips = {h: a for h, a in cdk_synth.assets["files"].items() if a["source"]["packaging"] == "zip"}
    assert len(zips) == 1
    ((asset_hash, asset),) = zips.items()
    (destination,) = asset["destinations"].values()
    location = {"Bucket": {"Fn::Sub": destination["bucketName"]}, "Key": f"{asset_hash}.zip"}
    assert destination["objectKey"] == location["Key"]
    functions = {
        rid: r["Properties"]
        for rid, r in cdk_synth.template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert sorted(functions) == [
        "HttpFunction",
        "SchedulerFunction",
        "StreamFunction",
        "WsFunction",
    ]
    for rid, f in functions.items():
        assert f["CodeUri"] == location, rid
    staged = cdk_synth.outdir / asset["source"]["path"]
    assert (staged / "index.py").read_text() == (cdk_synth.code / "index.py").read_text()
