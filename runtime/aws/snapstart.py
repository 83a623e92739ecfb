"""SnapStart restore hook (template.yaml publishes every function with
SnapStart): what a snapshot must not carry is reset on each restore.

A snapshot holds the initialized environment, imports done. Everything
that must be unique per environment or fresh is made on the first
invocation, after the restore, never at import: the backend, its AWS
clients and connections, credentials (the lean clients read them from the
container credentials endpoint on their first call; botocore when a client
is made), the admin key (Secrets Manager, read with the backend). What import
does make is the `random` module's global generator, seeded from the OS at
import: every environment restored from one snapshot would draw the same
numbers (the DynamoDB retries' jitter would then move in lockstep), so it
is reseeded after each restore. `uuid4`, `secrets` and `os.urandom` read
the OS each time: unaffected.

`snapshot_restore_py` ships with Lambda's Python runtimes (not in the
package); elsewhere there is nothing to restore and this does nothing."""

from __future__ import annotations

import random

__all__ = ["after_restore", "install"]


def after_restore() -> None:
    """Reseed what an import seeded: the global `random` generator."""
    random.seed()


def install() -> bool:
    """Register `after_restore` with Lambda's runtime hooks; False where
    there is no such runtime (tests, the local harness)."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:
        return False
    register_after_restore(after_restore)
    return True


install()
