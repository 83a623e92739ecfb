"""Notice edits under `functions/`: a polling watcher (no extra dependency,
works on every file system). A change fires once the tree has been quiet
for `settle` seconds, so an editor's save-in-several-steps reloads once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["Watcher", "snapshot"]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every .py file under root."""
    found: dict[str, tuple[int, int]] = {}
    for path in root.rglob("*.py"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        found[str(path)] = (st.st_mtime_ns, st.st_size)
    return found


class Watcher:
    def __init__(
        self,
        root: Path,
        on_change: Callable[[], None],
        *,
        interval: float = 0.25,
        settle: float = 0.15,
    ) -> None:
        self.root = root
        self._on_change = on_change
        self._interval = interval
        self._settle = settle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="functions-watcher", daemon=True)
        self._seen = snapshot(root)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = snapshot(self.root)
            if now == self._seen:
                continue
            while not self._stop.wait(self._settle):
                later = snapshot(self.root)
                if later == now:
                    break
                now = later
            self._seen = now
            try:
                self._on_change()
            except Exception as e:  # keep watching whatever one reload did
                print(f"reload failed: {type(e).__name__}: {e}")
