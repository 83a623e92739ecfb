"""auth.config.py loads with the functions: a bad one is refused on reload
with a clear message and the previous functions and providers stay in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.auth import Unauthenticated
from runtime.backend import Backend
from runtime.store.sqlite import SqliteStore

GOOD = 'providers = [{"domain": "https://issuer.example", "applicationID": "app"}]\n'


def _backend(tmp_path: Path) -> Backend:
    (tmp_path / "hello.py").write_text(
        "from runtime import query\n\n@query(args={})\ndef hi(ctx, args):\n    return 1\n"
    )
    return Backend(SqliteStore(":memory:"), tmp_path, admin_key=None)


def test_the_providers_load_with_the_functions(tmp_path: Path) -> None:
    (tmp_path / "auth.config.py").write_text(GOOD)
    backend = _backend(tmp_path)
    assert backend.reload().ok
    assert [p.issuer for p in backend.registry.providers] == ["https://issuer.example"]
    assert backend.authenticator.configured
    assert "auth.config" not in " ".join(backend.registry.functions)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('providers = [{"domain": "http://issuer.example", "applicationID": "a"}]\n', "https"),
        ("providers = 5\n", "providers"),
        ("x = 1\n", "define `providers = [...]`"),
        ("providers = [\n", "SyntaxError"),
    ],
)
def test_a_bad_config_is_refused_and_the_previous_one_stays(
    tmp_path: Path, text: str, said: str
) -> None:
    (tmp_path / "auth.config.py").write_text(GOOD)
    backend = _backend(tmp_path)
    assert backend.reload().ok
    before = backend.authenticator
    (tmp_path / "auth.config.py").write_text(text)
    report = backend.reload()
    assert not report.ok
    assert "auth.config.py" in report.message and said in report.message
    assert backend.authenticator is before
    assert [p.issuer for p in backend.registry.providers] == ["https://issuer.example"]
    assert backend.registry.get("hello:hi") is not None


def test_without_a_config_every_token_is_refused_saying_so(tmp_path: Path) -> None:
    backend = _backend(tmp_path)
    assert backend.reload().ok
    with pytest.raises(Unauthenticated, match="No auth provider is configured"):
        backend.verify_token("a.b.c")


def test_an_unchanged_config_keeps_its_authenticator_and_key_cache(tmp_path: Path) -> None:
    (tmp_path / "auth.config.py").write_text(GOOD)
    backend = _backend(tmp_path)
    assert backend.reload().ok
    kept = backend.authenticator
    assert backend.reload().ok
    assert backend.authenticator is kept
