"""Errors worded as Convex words them, in-process: ConvexError data as the
JS client prints it, validation messages, the request-id line, the user's
frames, nested calls, the socket's answers for refused calls, the dev log."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.database import Database
from runtime.errors import ConvexError, FunctionCallError, ValidationError, stringify_for_error
from runtime.functions import load_functions
from runtime.functions.executor import ArgumentsInvalid, Executor, FunctionNotFound, RequestError
from runtime.local.calllog import CallLog
from runtime.store.sqlite import SqliteStore
from runtime.sync.results import refused_message, respond
from runtime.values import v

APP = Path(__file__).resolve().parents[1] / "integration" / "apps" / "compat_errors"
ID = r"\[Request ID: [a-f0-9]{16}\] Server Error"


@pytest.fixture
def executor() -> Iterator[Executor]:
    store = SqliteStore(":memory:")
    yield Executor(Database(store), load_functions(APP, namespace="_compat_errors_app"))
    store.close()


# ---- ConvexError data ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"message": "Boom", "code": 123}, '{"message":"Boom","code":"123n"}'),
        ([1.0, 1.5, None, True], "[1,1.5,null,true]"),
        ({"b": 1e21, "a": 1e-7, "c": 0.000001}, '{"b":1e+21,"a":1e-7,"c":0.000001}'),
        ([float("nan"), float("inf"), b"\x00"], "[null,null,{}]"),
        ({"é": "ü\n"}, '{"é":"ü\\n"}'),
    ],
)
def test_convex_error_data_reads_as_the_js_client_prints_it(data: object, text: str) -> None:
    assert stringify_for_error(data) == text
    assert str(ConvexError(data)) == text


def test_long_data_is_cut_in_the_message_only() -> None:
    error = ConvexError(["x" * 20000])
    assert len(str(error)) == 16384 and str(error).endswith("[...truncated]")
    assert error.data == ["x" * 20000]


def test_a_subclass_keeps_its_name(executor: Executor) -> None:
    result = executor.call("custom_errors:query_throwing_convex_error_subclass", {})
    assert result.logged_message == 'Uncaught FooError: {"message":"Boom boom bop","code":"123n"}'
    assert result.error_data == {"message": "Boom boom bop", "code": 123}


# ---- validation wording --------------------------------------------------------


def convex_message(validator: object, value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        v.object({"x": validator}).validate({"x": value}, "args")  # type: ignore[dict-item]
    return caught.value.convex_message()


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        (
            v.int64(),
            1.0,
            "Value does not match validator.\nPath: .x\nValue: 1.0\nValidator: v.int64()\n"
            # Ours: a last line with what to do (Convex stops at the validator).
            "Hint: clients send plain numbers as float64: send an int64, e.g. ConvexInt64(n) "
            'from the Python client, BigInt in JavaScript, {"$integer": ...} in JSON, or '
            "declare the argument v.number()",
        ),
        (
            v.array(v.object({"n": v.number()})),
            [{"n": 1.0}, {"n": "2"}],
            'Value does not match validator.\nPath: .x[1].n\nValue: "2"\nValidator: v.float64()',
        ),
        (
            v.record(v.string(), v.boolean()),
            {"k": None},
            "Value does not match validator.\nPath: .x.values()\nValue: null\n"
            "Validator: v.boolean()",
        ),
        (
            v.union(v.string(), v.object({"n": v.int64()})),
            {"n": 2.0},
            "Value does not match validator.\nPath: .x\nValue: {n: 2.0}\n"
            "Validator: v.union(v.string(), v.object({n: v.int64()}))",
        ),
        (v.literal("a"), "b", '`"b"` does not match literal validator `v.literal("a")`.Path: .x'),
        (
            v.object({"b": v.optional(v.bytes()), "a": v.null()}),
            {"b": b"\x01"},
            "Object is missing the required field `a`. Consider wrapping the field validator "
            'in `v.optional(...)` if this is expected.\nPath: .x\nObject: {b: b"AQ=="}\n'
            "Validator: v.object({a: v.null(), b: v.optional(v.bytes())})",
        ),
    ],
)
def test_validation_reads_as_convex_words_it(
    validator: object, value: object, message: str
) -> None:
    assert convex_message(validator, value) == message


def test_the_path_naming_message_stays_for_documents() -> None:
    with pytest.raises(ValidationError, match=r"^document\.n: expected int64, got float64 1\.0"):
        v.object({"n": v.int64()}).validate({"n": 1.0}, "document")


def test_arguments_and_unknown_functions_are_refused_in_convex_words(executor: Executor) -> None:
    with pytest.raises(ArgumentsInvalid) as bad:
        executor.call("custom_errors:takes_a_string", {"a": 1.0})
    assert bad.value.message == (
        "ArgumentValidationError: Value does not match validator.\nPath: .a\nValue: 1.0\n"
        "Validator: v.string()"
    )
    for fn in ("custom_errors:nope", "custom_errors:hidden"):  # internal: as if absent
        with pytest.raises(FunctionNotFound) as missing:
            executor.call(fn, {})
        assert missing.value.message == (
            f"Could not find public function for '{fn}'. Did you forget to run "
            "`python -m runtime dev` or `python -m runtime deploy`?"
        )


# ---- the message and its frames -----------------------------------------------


def test_dev_messages_carry_the_request_id_the_header_and_the_users_frames(
    executor: Executor,
) -> None:
    result = executor.call("custom_errors:query_throwing_normal_error", {})
    assert re.fullmatch(
        rf"\[Request ID: {result.request_id}\] Server Error\nUncaught ValueError: Normal error\n"
        r"    at query_throwing_normal_error \(\.\./compat_errors/custom_errors\.py:\d+:\d+\)\n",
        result.error_message or "",
    ), result.error_message
    assert "runtime/" not in (result.error_message or "")  # no platform frames
    assert "runtime/functions/executor.py" in (result.traceback or "")  # the log keeps them


def test_production_keeps_the_request_id_and_the_data(executor: Executor) -> None:
    executor.prod = True
    result = executor.call("custom_errors:action_calling_query_throwing_convex_error_subclass", {})
    assert result.error_message == f"[Request ID: {result.request_id}] Server Error"
    assert result.error_data == {"message": "Boom boom bop", "code": 123}
    caught = executor.call("custom_errors:action_catching", {}).value
    assert caught["convex"]["message"] == "Server Error"
    assert caught["other"] == {"type": "FunctionCallError", "message": "Server Error"}


def test_nested_calls_hand_the_caller_what_convex_hands_it(executor: Executor) -> None:
    caught = executor.call("custom_errors:action_catching", {}).value
    assert caught["convex"]["type"] == "ConvexError"
    assert caught["convex"]["data"] == {"message": "Boom boom bop", "code": 123}
    assert caught["convex"]["message"].startswith(
        'Uncaught FooError: {"message":"Boom boom bop","code":"123n"}\n'
        "    at query_throwing_convex_error_subclass ("
    )
    assert caught["other"]["type"] == FunctionCallError.__name__
    result = executor.call("custom_errors:action_calling_query_throwing_convex_error", {})
    assert re.fullmatch(
        f"{ID}\nUncaught ConvexError: Uncaught ConvexError: Boom boom bop\n"
        r"    at query_throwing_convex_error \(\.\./compat_errors/custom_errors\.py:\d+:\d+\)\n\n"
        r"    at action_calling_query_throwing_convex_error \(\.\./compat_errors/custom_errors\.py:\d+:\d+\)\n",
        result.error_message or "",
    ), result.error_message


# ---- the socket and the log ----------------------------------------------------


def test_the_socket_answers_a_refused_call_as_a_failed_one(executor: Executor) -> None:
    message, call = respond(
        "MutationResponse", 1, lambda: executor.call("custom_errors:nope", {}), prod=False
    )
    assert call is None and message["success"] is False
    assert re.fullmatch(
        f"{ID}\nCould not find public function for 'custom_errors:nope'\\. .*\n",
        message["result"],
    )
    with pytest.raises(FunctionNotFound) as refused:
        executor.call("custom_errors:nope", {})
    assert refused_message(refused.value, prod=True) == (
        f"[Request ID: {refused.value.request_id}] Server Error"
    )


def test_the_dev_log_line_names_the_request_id(executor: Executor) -> None:
    out = io.StringIO()
    executor.on_call = CallLog(out)
    result = executor.call("custom_errors:query_throwing_convex_error", {})
    line = out.getvalue().splitlines()[0]
    assert f"error  [Request ID: {result.request_id}] Uncaught ConvexError: Boom boom bop" in line


def test_a_refused_call_has_a_log_line_under_the_request_id_its_caller_reads(
    executor: Executor,
) -> None:
    out = io.StringIO()
    executor.on_call = CallLog(out)
    with pytest.raises(RequestError) as refused:
        executor.call("custom_errors:no_such_function", {})
    line = out.getvalue().splitlines()[0]
    assert f"[Request ID: {refused.value.request_id}] FUNCTION_NOT_FOUND: Could not find" in line
    assert "custom_errors:no_such_function" in line
