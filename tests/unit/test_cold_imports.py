"""What a Lambda's cold start imports: PyJWT (and the cryptography package
under it, about 50 ms here) loads with the first user token, not with the
handlers, so an app without auth, or a call without a token, never pays it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.devserver import ROOT


@pytest.mark.parametrize("handler", ["runtime.aws.http", "runtime.aws.ws", "runtime.aws.stream"])
def test_the_handlers_import_no_jwt_library(handler: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {handler}; print(sorted("
         "m for m in ('jwt', 'cryptography') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "[]"
