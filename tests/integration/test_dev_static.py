"""`dev --static DIR`: a built web app served at the API's origin, the API
still answering beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.devserver import APP_FUNCTIONS, ROOT, dev_server


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers["content-type"], answer.read().decode()


def test_static_folder_is_served_beside_the_api(tmp_path: Path) -> None:
    web = tmp_path / "web"
    (web / "assets").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>chat</title>")
    (web / "assets" / "app.js").write_text("console.log(1)")
    with dev_server(APP_FUNCTIONS, tmp_path / "data", extra=["--static", str(web)]) as server:
        status, kind, body = _get(server.url + "/")
        assert (status, body) == (200, "<!doctype html><title>chat</title>")
        assert kind.startswith("text/html")
        assert _get(server.url + "/assets/app.js")[2] == "console.log(1)"
        request = urllib.request.Request(
            server.url + "/api/query",
            data=json.dumps({"path": "messages:list", "args": {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.loads(answer.read())["status"] == "success"
        assert "web app" in server.log()


def test_static_folder_without_index_is_refused(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "dev", "--functions", str(APP_FUNCTIONS),
         "--data", str(tmp_path / "data"), "--port", "0", "--site-port", "0",
         "--static", str(tmp_path / "web")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no index.html there (build the web app first)" in done.stderr
