"""The large-commit protocol's error paths that DynamoDB Local never produces
(TransactionConflict and throttling cancellations, a lost answer at the
commit point, an apply batch cancelled because a reader got there first),
injected with botocore's Stubber. Calls run in order: one thread."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runtime.store.dynamodb import DynamoDBStore
from runtime.store.dynamodb_large import LargeCommits
from runtime.store.port import Bump, Op, TransactionConflict

TABLE = "store_table"
OPS: list[Op] = [Bump(("v:t", i.to_bytes(2, "big"))) for i in range(101)]  # 2 batches


def stubbed() -> tuple[DynamoDBStore, Stubber, list[tuple[str, dict[str, Any]]]]:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",  # never reached: the stubber answers
    )
    store = DynamoDBStore(TABLE, client=client, max_transaction_items=None, clock=lambda: 77)
    store.large = LargeCommits(client, TABLE, threads=1)
    sent: list[tuple[str, dict[str, Any]]] = []
    client.meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda params, model, **_: sent.append((model.name, params)),
    )
    return store, Stubber(client), sent


def start(stub: Stubber) -> None:
    """Recovery finds nothing, R is put, 101 payloads staged (100 + 1, 25 a call)."""
    stub.add_response("query", {"Items": []})
    stub.add_response("put_item", {})
    for _ in range(5):
        stub.add_response("batch_write_item", {})


def cancel(stub: Stubber, code: str, at: int = 0, n: int = 100) -> None:
    reasons = [{"Code": "None"} for _ in range(n)]
    reasons[at] = {"Code": code, "Message": f"{code} happened"}
    stub.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        service_message="Transaction cancelled",
        http_status_code=400,
        modeled_fields={"CancellationReasons": reasons},
    )


def cleanup(stub: Stubber) -> None:
    for _ in range(5):
        stub.add_response("batch_write_item", {})
    stub.add_response("delete_item", {})


def deleted(sent: list[tuple[str, dict[str, Any]]]) -> tuple[int, list[str]]:
    """(payload items deleted, partitions of single deletes)."""
    payloads = sum(
        1
        for name, p in sent
        if name == "BatchWriteItem"
        for r in p["RequestItems"][TABLE]
        if "DeleteRequest" in r and r["DeleteRequest"]["Key"]["pk"]["S"].startswith("~txp:")
    )
    singles = [p["Key"]["pk"]["S"] for name, p in sent if name == "DeleteItem"]
    return payloads, singles


@pytest.mark.parametrize("code", ["TransactionConflict", "ThrottlingError"])
def test_a_cancelled_lock_batch_aborts_and_leaves_nothing(code: str) -> None:
    store, stub, sent = stubbed()
    start(stub)
    cancel(stub, code)  # lock batch 0; batch 1 never starts
    stub.add_response("update_item", {})  # R pending -> aborted
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}})  # what is still locked:
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}})  # nothing
    cleanup(stub)
    with stub, pytest.raises(TransactionConflict) as info:
        store.transact(OPS)
    stub.assert_no_pending_responses()
    assert info.value.keys == [] and code in str(info.value)
    locks = [p for name, p in sent if name == "TransactWriteItems"]
    assert len(locks) == 1
    first = locks[0]["TransactItems"][0]["Update"]
    assert first["UpdateExpression"] == "SET #lk = :txid, #li = :li, #lts = :lts"
    assert first["ConditionExpression"] == "attribute_not_exists(#lk)"
    abort = next(p for name, p in sent if name == "UpdateItem")
    assert abort["ExpressionAttributeValues"][":to"] == {"S": "aborted"}
    assert deleted(sent) == (101, ["~tx"])


def test_a_lost_answer_at_the_commit_point_is_resolved_by_reading_the_record() -> None:
    store, stub, sent = stubbed()
    start(stub)
    stub.add_response("transact_write_items", {})  # lock batches
    stub.add_response("transact_write_items", {})
    stub.add_client_error(
        "update_item", service_error_code="ThrottlingException", http_status_code=400
    )
    stub.add_response(
        "get_item",
        {"Item": {"st": {"S": "committed"}, "ts": {"N": "77"}, "dl": {"N": "9" * 13}}},
    )
    stub.add_response("transact_write_items", {})  # apply batches
    stub.add_response("transact_write_items", {})
    cleanup(stub)
    with stub:
        assert store.transact(OPS).ts == 77
    stub.assert_no_pending_responses()
    applies = [p for name, p in sent if name == "TransactWriteItems"][2:]
    entry = applies[0]["TransactItems"][0]["Update"]
    assert entry["ConditionExpression"] == "#lk = :txid"
    assert entry["UpdateExpression"] == "SET #vt = :ts ADD #n :one REMOVE #lk, #li, #lts"
    assert deleted(sent) == (101, ["~tx"])


def test_a_lost_commit_point_that_did_not_land_aborts() -> None:
    store, stub, sent = stubbed()
    start(stub)
    stub.add_response("transact_write_items", {})
    stub.add_response("transact_write_items", {})
    stub.add_client_error(
        "update_item", service_error_code="ThrottlingException", http_status_code=400
    )
    stub.add_response("get_item", {"Item": {"st": {"S": "pending"}, "ts": {"N": "77"}}})
    stub.add_response("update_item", {})  # abort
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}})
    stub.add_response("batch_get_item", {"Responses": {TABLE: []}})
    cleanup(stub)
    with stub, pytest.raises(TransactionConflict):
        store.transact(OPS)
    stub.assert_no_pending_responses()
    states = [p["ExpressionAttributeValues"][":to"] for name, p in sent if name == "UpdateItem"]
    assert states == [{"S": "committed"}, {"S": "aborted"}]
    assert deleted(sent) == (101, ["~tx"])


def test_a_cancelled_apply_batch_is_resent_entry_by_entry() -> None:
    store, stub, sent = stubbed()
    start(stub)
    stub.add_response("transact_write_items", {})
    stub.add_response("transact_write_items", {})
    stub.add_response("update_item", {})  # the commit point
    cancel(stub, "ConditionalCheckFailed", at=3)  # a reader rolled entry 3 forward
    for i in range(100):
        if i == 3:
            stub.add_client_error(
                "update_item",
                service_error_code="ConditionalCheckFailedException",
                http_status_code=400,
            )
        else:
            stub.add_response("update_item", {})
    stub.add_response("transact_write_items", {})  # apply batch 1
    cleanup(stub)
    with stub:
        store.transact(OPS)
    stub.assert_no_pending_responses()
    singles = [p for name, p in sent if name == "UpdateItem"][1:]
    assert len(singles) == 100
    assert all(p["ConditionExpression"] == "#lk = :txid" for p in singles)
    assert [p["Key"]["sk"]["B"][1:] for p in singles] == [op.key[1] for op in OPS[:100]]
