"""How a failed call reads, as Convex words it (`RedactedJsError`).

    [Request ID: 5f0c2a9e1b7d4c3a] Server Error
    Uncaught FooError: {"message":"Boom","code":"123n"}
        at query_throwing (../functions/custom_errors.py:12:5)

The first line names the call's request id (also in the server's log line,
so a user's report finds the log). In dev the rest follows: the error's
header (`Uncaught <Name>: <message>`) and the user's own frames, innermost
first, the platform's left out; in production nothing of it (a
ConvexError's data still reaches the caller as `errorData`).

A function's failure crosses `ctx.run_query`/`run_mutation`/`run_action`
the way Convex hands it to the calling action: a ConvexError arrives as a
ConvexError with the same data and the nested call's whole text as its
message; any other error as a `FunctionCallError` with that text; in
production the text is "Server Error" (`nested_message`).
"""

from __future__ import annotations

import inspect
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from runtime.errors import ConvexError, PlatformError

from .determinism import real_urandom

__all__ = [
    "Rendered",
    "client_message",
    "header",
    "http_error_body",
    "new_request_id",
    "render",
    "user_frames",
]

_RUNTIME = str(Path(__file__).resolve().parents[1]) + os.sep
_LIBRARIES = tuple(
    str(Path(p).resolve()) + os.sep
    for p in {sysconfig.get_path("stdlib"), sysconfig.get_path("purelib")}
    if p
)


def new_request_id() -> str:
    """16 lowercase hex digits, as Convex's request ids (from the real
    randomness: a call may start inside a frozen one's guard)."""
    return real_urandom(8).hex()


@dataclass(frozen=True, slots=True)
class Rendered:
    header: str
    """`Uncaught <Name>: <message>` (Convex's JsError.message)."""
    text: str
    """The header, then one `    at ...` line per user frame, each line
    ending in a newline (Convex's JsError as text)."""


def header(e: BaseException) -> str:
    """The error's first line as Convex words it."""
    if isinstance(e, ConvexError):
        return f"Uncaught {type(e).__name__}: {e.message}"
    if isinstance(e, PlatformError) and not getattr(e, "thrown", True):
        return e.message  # the platform's own check around the call, not code that threw
    if isinstance(e, PlatformError):
        return f"Uncaught {type(e).__name__}: {e.code}: {e.message}"
    return f"Uncaught {type(e).__name__}: {e}"


def render(e: BaseException, root: Path | None) -> Rendered:
    first = header(e)
    frames = "".join(f"{line}\n" for line in user_frames(e.__traceback__, root))
    return Rendered(first, f"{first}\n{frames}")


def user_frames(tb: TracebackType | None, root: Path | None) -> list[str]:
    """`    at <function> (../functions/<file>:<line>:<column>)` for each frame
    in the app's own files (under `root`; without one, outside the platform
    and the Python installation), innermost first as JavaScript prints
    them; a coroutine's frame that awaited is `at async ...`."""
    base = str(root.resolve()) + os.sep if root is not None else None
    lines: list[str] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = os.path.abspath(code.co_filename)
        mine = (
            filename.startswith(base)
            if base is not None
            else not filename.startswith((_RUNTIME, *_LIBRARIES)) and not filename.startswith("<")
        )
        if mine:
            # A coroutine that was awaiting when the error reached it.
            awaited = bool(code.co_flags & inspect.CO_COROUTINE) and tb.tb_next is not None
            where = _location(filename, root, tb)
            lines.append(f"    at {'async ' if awaited else ''}{code.co_name} ({where})")
        tb = tb.tb_next
    return lines[::-1]


def _location(filename: str, root: Path | None, tb: TracebackType) -> str:
    path = Path(filename)
    shown = (
        path.relative_to(root.resolve().parent)
        if root is not None
        else Path(path.parent.name, path.name)
    )
    line = tb.tb_lineno
    column = None
    positions = list(tb.tb_frame.f_code.co_positions())
    index = tb.tb_lasti // 2
    if 0 <= index < len(positions):
        column = positions[index][2]
    where = f"../{shown.as_posix()}:{line}"
    return f"{where}:{column + 1}" if column is not None else where


def client_message(request_id: str, text: str | None, *, prod: bool) -> str:
    """What a client reads for a failed call: `[Request ID: x] Server Error`,
    then (not in production) the error's text."""
    first = f"[Request ID: {request_id}] Server Error"
    return first if prod or text is None else f"{first}\n{text}"


def http_error_body(
    request_id: str, rendered: Rendered | None, data: object, *, prod: bool, has_data: bool
) -> dict[str, object]:
    """The JSON body of a failed HTTP action (HTTP 500), as Convex answers:
    `code` (`[Request ID: x] Server Error: <header>`, the header left out in
    production), `trace` (the error's text, not in production) and `data` (a
    ConvexError's data, encoded by the caller)."""
    code = f"[Request ID: {request_id}] Server Error"
    body: dict[str, object] = {"code": code}
    if not prod and rendered is not None:
        body["code"] = f"{code}: {rendered.header}"
        body["trace"] = rendered.text
    if has_data:
        body["data"] = data
    return body
