"""File upload and download on the dev server, next to a plain file copy.

Figures (medians over the repeats, one run):
- files_copy_mb_s: a plain copy of the file on the same disk, in 1 MiB
  chunks, fsynced (the blob store fsyncs every upload: the same work);
- files_upload_mb_s: POST of the file to an upload URL (`generate_upload_url`),
  streamed by `requests` from disk, until `{"storageId"}` comes back;
- files_upload_vs_copy: upload / copy throughput (goal >= 0.8);
- files_download_mb_s: GET of the file's URL (`get_url`), streamed and
  discarded; files_download_vs_copy: download / copy throughput;
- files_upload_rss_growth_mb: how far the dev server's resident memory rose
  above its level before the upload, sampled every 10 ms during the first
  upload (flat memory: the body is streamed to disk, never held whole).

Every upload is checked: its `_storage` size and SHA-256 match the file.
Run: `python bench/files.py [--quick]` (--quick: a 32 MB file, one repeat;
the full run uses the issue's 200 MB).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from convex.http_client import ConvexHttpClient

from tests.support.devserver import start_dev_server

FUNCTIONS = """
from runtime import mutation, query, v


@mutation(args={})
def upload_url(ctx, args):
    return ctx.storage.generate_upload_url()


@query(args={"id": v.id("_storage")})
def meta(ctx, args):
    return {"url": ctx.storage.get_url(args["id"]), "doc": ctx.db.system.get(args["id"])}
"""

CHUNK = 1 << 20
MB = 1_000_000


def figure(name: str, value: float, unit: str) -> None:
    print(f"figure {name} {value:.4g} {unit}", flush=True)


def make_file(path: Path, size: int) -> str:
    """`size` random bytes at `path`; their base64 SHA-256 (as `_storage.sha256`)."""
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as f:
        written = 0
        while written < size:
            # Vary each chunk cheaply so no layer can dedupe or compress it.
            chunk = (written.to_bytes(8, "big") + block)[: min(CHUNK, size - written)]
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
    return base64.b64encode(digest.digest()).decode()


def copy(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    with src.open("rb") as r, dst.open("wb") as w:
        while chunk := r.read(CHUNK):
            w.write(chunk)
        w.flush()
        os.fsync(w.fileno())
    seconds = time.perf_counter() - start
    dst.unlink()
    return seconds


def rss_kb(pid: int) -> int:
    """Resident memory of `pid` and its children (kB)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if int(entry) != pid and ppid != pid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


class RssSampler:
    """The highest resident memory of a process tree while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss_kb(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_kb(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb(self.pid))


def upload(client: ConvexHttpClient, path: Path, sha: str, size: int) -> tuple[float, str]:
    url = client.mutation("bench:upload_url")
    with path.open("rb") as body:
        start = time.perf_counter()
        answer = requests.post(
            url,
            data=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            timeout=600,
        )
        seconds = time.perf_counter() - start
    answer.raise_for_status()
    storage_id: str = answer.json()["storageId"]
    doc = client.query("bench:meta", {"id": storage_id})["doc"]
    assert (doc["size"], doc["sha256"]) == (size, sha), doc
    return seconds, storage_id


def download(client: ConvexHttpClient, storage_id: str, size: int) -> float:
    url = client.query("bench:meta", {"id": storage_id})["url"]
    start = time.perf_counter()
    got = 0
    with requests.get(url, stream=True, timeout=600) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_content(CHUNK):
            got += len(chunk)
    seconds = time.perf_counter() - start
    assert got == size, (got, size)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    ns = parser.parse_args()
    size = (32 if ns.quick else 200) * MB
    repeats = 1 if ns.quick else 3
    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp_name:
        tmp = Path(tmp_name)  # the server's data, the file and its copy: one disk
        app = tmp / "app"
        app.mkdir()
        (app / "bench.py").write_text(FUNCTIONS)
        source = tmp / "source.bin"
        sha = make_file(source, size)
        server = start_dev_server(app, tmp / "data")
        try:
            client = ConvexHttpClient(server.url)
            copies, uploads, downloads = [], [], []
            rss_growth_kb = 0
            for attempt in range(repeats):
                copies.append(copy(source, tmp / "copy.bin"))
                if attempt == 0:
                    with RssSampler(server.process.pid) as rss:
                        seconds, storage_id = upload(client, source, sha, size)
                    rss_growth_kb = rss.peak - rss.base
                else:
                    seconds, storage_id = upload(client, source, sha, size)
                uploads.append(seconds)
                downloads.append(download(client, storage_id, size))
        finally:
            server.stop()
    copy_mb_s = size / MB / statistics.median(copies)
    upload_mb_s = size / MB / statistics.median(uploads)
    download_mb_s = size / MB / statistics.median(downloads)
    figure("files_size_mb", size / MB, "MB")
    figure("files_copy_mb_s", copy_mb_s, "MB/s")
    figure("files_upload_mb_s", upload_mb_s, "MB/s")
    figure("files_upload_vs_copy", upload_mb_s / copy_mb_s, "x")
    figure("files_download_mb_s", download_mb_s, "MB/s")
    figure("files_download_vs_copy", download_mb_s / copy_mb_s, "x")
    figure("files_upload_rss_growth_mb", rss_growth_kb / 1024, "MB")


if __name__ == "__main__":
    main()
