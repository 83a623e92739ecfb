"""Environment variables: stored by the backend, seen by functions as `os.environ`.

They live in the store (partition `s:env`, one item per name), so every
process serving the app reads the same set; `apply()` copies them into
`os.environ` and removes the ones that were unset since, which is how a
change reaches running functions without a restart.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping

from runtime.errors import PlatformError
from runtime.limits import ENV_NAME_CHARS, ENV_VALUE_BYTES, ENV_VARS
from runtime.store.port import Delete, Op, Put, Store, scan_all

__all__ = ["EnvVarError", "Environment"]

PARTITION = "s:env"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class EnvVarError(PlatformError):
    code = "INVALID_ENV_VAR"


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise EnvVarError(
            f"invalid environment variable name {name!r}: start with a letter, then "
            "letters, digits and underscores"
        )
    if len(name) > ENV_NAME_CHARS:
        raise EnvVarError(
            f"environment variable name {name[:20]}... is {len(name)} characters; "
            f"the limit is {ENV_NAME_CHARS}"
        )


def check_value(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise EnvVarError(f"the value of {name} must be a string")
    size = len(value.encode())
    if size > ENV_VALUE_BYTES:
        raise EnvVarError(
            f"the value of {name} is {size} bytes; the limit is {ENV_VALUE_BYTES} "
            "(store bigger data in a table or a file)"
        )


class Environment:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._applied: dict[str, str] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def list(self) -> dict[str, str]:
        return {it.key[1].decode(): it.value.decode() for it in scan_all(self._store, PARTITION)}

    def update(self, changes: Mapping[str, str | None]) -> dict[str, str]:
        """Set (a string) or remove (None) variables; all or nothing. Returns
        the new set, already applied to this process's `os.environ`."""
        for name, value in changes.items():
            check_name(name)
            if value is not None:
                check_value(name, value)
        current = self.list()
        after = {**current}
        for name, value in changes.items():
            if value is None:
                after.pop(name, None)
            else:
                after[name] = value
        if len(after) > ENV_VARS:
            raise EnvVarError(
                f"a deployment has at most {ENV_VARS} environment variables "
                f"({len(after)} after this change)"
            )
        ops: list[Op] = []
        for name, value in changes.items():
            key = (PARTITION, name.encode())
            ops.append(Delete(key) if value is None else Put(key, value.encode()))
        for start in range(0, len(ops), self._store.max_transaction_items):
            self._store.transact(ops[start : start + self._store.max_transaction_items])
        self.apply(after)
        return after

    def refresh(self, max_age: float) -> None:
        """Re-read and apply the variables if the last read is older than
        `max_age` seconds (processes that do not see `update` calls, such as
        Lambdas, pick changes up this way)."""
        if time.monotonic() - self._read_at >= max_age:
            self.apply()

    def withdraw(self) -> None:
        """Remove from `os.environ` what `apply` put there (a closing backend)."""
        with self._lock:
            for name, value in self._applied.items():
                if os.environ.get(name) == value:
                    del os.environ[name]
            self._applied = {}

    def apply(self, variables: Mapping[str, str] | None = None) -> None:
        """Make `os.environ` show the stored variables (read them if not given)."""
        if variables is None:
            variables = self.list()
        self._read_at = time.monotonic()
        with self._lock:
            for name in set(self._applied) - set(variables):
                if os.environ.get(name) == self._applied[name]:
                    del os.environ[name]
            for name, value in variables.items():
                os.environ[name] = value
            self._applied = dict(variables)
