"""Environment variables: stored by the backend, seen by functions as `os.environ`.

They live in the store (partition `s:env`, one item per name), so every
process serving the app reads the same set; `apply()` copies them into
`os.environ` and removes the ones that were unset since, which is how a
change reaches running functions without a restart.

Because they land in the process's own environment, names the process or
its platform reads are reserved (`PATH`, `PYTHON*`, `LD_*`, `AWS_*`, ...:
they could change how Python, the loader or boto3 behave), and values must
be text `os.environ` can hold (no NUL, no lone surrogates). Both are refused
when set; a stored variable that breaks them (stored before these checks)
is skipped with a warning when applied, so it can never stop a server or a
Lambda from starting. It stays listed so that it can be removed.

Built-in variables (`SYSTEM_NAMES`, as on Convex): `CONVEX_CLOUD_URL`, the
deployment's URL for clients, and `CONVEX_SITE_URL`, where its HTTP actions
answer. The platform sets them; users cannot set or remove them (Convex:
"built-in and cannot be overridden") and `list` does not show them. A shell
that knows its URLs passes them in (the dev server: its two loopback
ports); the AWS shell cannot (a Lambda's environment cannot name the
CloudFront distribution in front of the API that invokes it: a dependency
cycle in the template), so its deploy records them in the store, in this
same partition (`record_system`: `python -m runtime deploy --stack`, the
local harness at start), and every Lambda reads them with the rest.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping

from runtime.errors import PlatformError
from runtime.limits import ENV_NAME_CHARS, ENV_VALUE_BYTES, ENV_VARS
from runtime.store.port import Delete, Op, Put, Store, scan_all
from runtime.values import has_lone_surrogate

__all__ = [
    "RESERVED_NAMES",
    "RESERVED_PREFIXES",
    "SYSTEM_NAMES",
    "EnvVarError",
    "Environment",
]

PARTITION = "s:env"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_log = logging.getLogger(__name__)

RESERVED_NAMES = frozenset({"PATH", "TZ", "HOME"})
"""Read by the process itself: where programs are found, the local time
zone (queries and mutations must not depend on it), the user's home."""

SYSTEM_NAMES = ("CONVEX_CLOUD_URL", "CONVEX_SITE_URL")
"""Built-in: set by the platform for every function (see the module docstring)."""

RESERVED_PREFIXES = ("PYTHON", "LD_", "AWS_", "LAMBDA_", "PYCONVEX_", "POWERTOOLS_")
"""The interpreter (PYTHONPATH, PYTHONSTARTUP...), the dynamic loader
(LD_PRELOAD), AWS SDK credentials and endpoints, Lambda's own variables,
this platform's settings and the Powertools settings of the AWS shell."""


class EnvVarError(PlatformError):
    code = "INVALID_ENV_VAR"


def check_name(name: str) -> None:
    if not isinstance(name, str) or not name.isascii() or not _NAME.match(name):
        shown = ascii(name)[:60] if isinstance(name, str) else type(name).__name__
        raise EnvVarError(
            f"invalid environment variable name {shown}: start with a letter, then "
            "letters, digits and underscores"
        )
    if len(name) > ENV_NAME_CHARS:
        raise EnvVarError(
            f"environment variable name {name[:20]}... is {len(name)} characters; "
            f"the limit is {ENV_NAME_CHARS}"
        )
    if name in SYSTEM_NAMES:
        raise EnvVarError(
            f'Environment variable with name "{name}" is built-in and cannot be overridden '
            "(the platform sets it to this deployment's URL)"
        )
    upper = name.upper()
    if upper in RESERVED_NAMES or upper.startswith(RESERVED_PREFIXES):
        raise EnvVarError(
            f"{name} is a reserved name: the platform or the Python process reads it "
            f"(reserved: {', '.join(sorted(RESERVED_NAMES))} and names starting with "
            f"{', '.join(RESERVED_PREFIXES)}); choose another name"
        )


def check_value(name: str, value: str) -> None:
    if not isinstance(value, str):
        raise EnvVarError(f"the value of {name} must be a string")
    if "\x00" in value:
        raise EnvVarError(f"the value of {name} holds a NUL character, which no environment can")
    if has_lone_surrogate(value):
        raise EnvVarError(
            f"the value of {name} holds a lone surrogate (U+D800..U+DFFF without its "
            "pair): values must be valid Unicode"
        )
    size = len(value.encode())
    if size > ENV_VALUE_BYTES:
        raise EnvVarError(
            f"the value of {name} is {size} bytes; the limit is {ENV_VALUE_BYTES} "
            "(store bigger data in a table or a file)"
        )


class Environment:
    def __init__(self, store: Store, *, system: Mapping[str, str] | None = None) -> None:
        """`system`: the built-in variables, when the shell knows them; None
        reads the ones a deploy recorded in the store."""
        self._store = store
        self._system = None if system is None else _checked_system(system)
        self._system_applied: dict[str, str] = {}
        self._applied: dict[str, str] = {}
        self._warned: set[tuple[str, str]] = set()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def list(self) -> dict[str, str]:
        """Every stored variable, the ones `apply` skips too (so they can be seen
        and removed), but not the built-in ones; bytes that are not UTF-8 show
        as U+FFFD."""
        return {n: x for n, x in self._read().items() if n not in SYSTEM_NAMES}

    def _read(self) -> dict[str, str]:
        return {
            it.key[1].decode(errors="replace"): it.value.decode(errors="replace")
            for it in scan_all(self._store, PARTITION)
        }

    def record_system(self, values: Mapping[str, str]) -> None:
        """Store the built-in variables for every process serving the app
        (a deploy; see the module docstring). They take effect where
        variables are read next (`apply`, `refresh`)."""
        checked = _checked_system(values)
        self._store.transact(
            [Put((PARTITION, n.encode()), x.encode()) for n, x in sorted(checked.items())]
        )

    @property
    def system(self) -> dict[str, str]:
        """The built-in variables in force in this process."""
        return dict(self._system_applied)

    def update(self, changes: Mapping[str, str | None]) -> dict[str, str]:
        """Set (a string) or remove (None) variables; all or nothing. Returns
        the new set, already applied to this process's `os.environ`. Any
        stored name may be removed, a reserved one too, but not a built-in one."""
        for name, value in changes.items():
            if value is not None:
                check_name(name)
                check_value(name, value)
            elif not isinstance(name, str) or not name or has_lone_surrogate(name):
                raise EnvVarError(f"invalid environment variable name {ascii(name)[:60]}")
            elif name in SYSTEM_NAMES:
                check_name(name)  # refused: built-in
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
        # One commit when the store takes any size (None); else in its batches.
        step = self._store.max_transaction_items or max(1, len(ops))
        for start in range(0, len(ops), step):
            self._store.transact(ops[start : start + step])
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
            self._system_applied = {}

    def apply(self, variables: Mapping[str, str] | None = None) -> None:
        """Make `os.environ` show the stored variables (read them if not given)
        and the built-in ones; one that is not valid now is skipped with a
        warning."""
        system = self._system
        if variables is None:
            stored = self._read()
            variables = {n: x for n, x in stored.items() if n not in SYSTEM_NAMES}
            if system is None:
                system = {n: x for n, x in stored.items() if n in SYSTEM_NAMES}
        if system is None:
            system = self._system_applied
        variables = {n: x for n, x in variables.items() if self._usable(n, x)}
        system = {n: x for n, x in system.items() if self._usable_system(n, x)}
        variables = {**variables, **system}
        self._read_at = time.monotonic()
        with self._lock:
            self._system_applied = dict(system)
            for name in set(self._applied) - set(variables):
                if os.environ.get(name) == self._applied[name]:
                    del os.environ[name]
            for name, value in variables.items():
                os.environ[name] = value
            self._applied = dict(variables)

    def _usable_system(self, name: str, value: str) -> bool:
        try:
            check_value(name, value)
        except EnvVarError as e:
            _log.warning("built-in environment variable skipped: %s", e.message)
            return False
        return True

    def _usable(self, name: str, value: str) -> bool:
        try:
            check_name(name)
            check_value(name, value)
        except EnvVarError as e:
            if (name, value) not in self._warned:  # once, not at every refresh
                self._warned.add((name, value))
                _log.warning(
                    "environment variable skipped: %s (remove it with `env remove %s`)",
                    e.message,
                    name,
                )
            return False
        return True


def _checked_system(values: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        if name not in SYSTEM_NAMES:
            raise EnvVarError(
                f"{name} is not a built-in variable (those are {', '.join(SYSTEM_NAMES)})"
            )
        check_value(name, value)
        out[name] = value
    return out
