"""Figure (8): the peak resident memory of one herald worker process (the main process or any
pool child, whichever grew most), sampled with psutil while the measurements ran; the peak of
the whole worker (main process and children together) is given beside it."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil

from bench.figures import Figure

KEY = "worker_rss"
SAMPLE_S = 0.2
MB = 1024 * 1024


class PeakRss:
    """Samples a process tree in a thread from `with` until its end."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.one_process = 0
        self.whole_tree = 0
        self.processes = 0

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            try:
                tree = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                return
            sizes = []
            for process in tree:
                try:
                    sizes.append(process.memory_info().rss)
                except psutil.Error:
                    continue
            if sizes:
                self.one_process = max(self.one_process, *sizes)
                self.whole_tree = max(self.whole_tree, sum(sizes))
                self.processes = max(self.processes, len(sizes))

    def figure(self, store: str) -> Figure:
        return Figure(
            KEY,
            "(8) peak RSS of one worker process",
            self.one_process / MB if self.one_process else None,
            "MB",
            store,
            detail=f"whole worker ({self.processes} processes) peaked at "
            f"{self.whole_tree / MB:,.0f} MB",
        )
