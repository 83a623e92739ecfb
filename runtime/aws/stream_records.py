"""DynamoDB stream records in their two shapes: boto3's GetRecords (binary
attribute values as bytes, timestamps as datetimes) and the Lambda event
the event source mapping delivers (binary as base64 text, timestamps as
epoch seconds). The stream Lambda reads the second; the local harness's
poller makes it from the first."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["document_write", "from_lambda_record", "to_lambda_event", "to_lambda_record"]

_IMAGES = ("Keys", "NewImage", "OldImage")


def _convert(value: Mapping[str, Any], binary: Callable[[Any], Any]) -> dict[str, Any]:
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": binary(inner)}
    if kind == "BS":
        return {"BS": [binary(b) for b in inner]}
    if kind == "M":
        return {"M": {k: _convert(v, binary) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_convert(v, binary) for v in inner]}
    return {kind: inner}


def _to_text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _images(data: dict[str, Any], binary: Callable[[Any], Any]) -> dict[str, Any]:
    for image in _IMAGES:
        if image in data:
            data[image] = {k: _convert(v, binary) for k, v in data[image].items()}
    return data


def document_write(record: Mapping[str, Any]) -> bool:
    """The stream mapping's filter (template.yaml, `FilterCriteria`): a write
    of an item with the feed marker `f` (a document), or the removal of one.
    The platform's own items (sessions, leases, filings) do not pass."""
    data = record.get("dynamodb", {})
    if record.get("eventName") == "REMOVE":
        return _marked(data.get("OldImage"))
    return _marked(data.get("NewImage"))


def _marked(image: Mapping[str, Any] | None) -> bool:
    return image is not None and image.get("f") == {"BOOL": True}


def from_lambda_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record of a Lambda event, as boto3's GetRecords gives it."""
    return {**record, "dynamodb": _images(dict(record["dynamodb"]), base64.b64decode)}


def to_lambda_record(record: Mapping[str, Any], arn: str, region: str) -> dict[str, Any]:
    """One GetRecords record (boto3's shape) as a record of a Lambda event."""
    data = dict(record["dynamodb"])
    approx = data.get("ApproximateCreationDateTime")
    if isinstance(approx, datetime):
        seconds = approx.timestamp()
        data["ApproximateCreationDateTime"] = int(seconds) if seconds.is_integer() else seconds
    out = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": _images(data, _to_text),
        "eventSourceARN": arn,
    }
    if "userIdentity" in record:  # TTL deletions say who
        out["userIdentity"] = record["userIdentity"]
    return out


def to_lambda_event(
    records: list[Mapping[str, Any]], arn: str, region: str = "us-east-1"
) -> dict[str, Any]:
    return {"Records": [to_lambda_record(r, arn, region) for r in records]}
