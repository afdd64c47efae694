"""A directory that behaves like configfs-tsm's report root, played by a small thread.

Real configfs creates ``outblob`` with the entry and fills it when read; a plain
directory cannot, so the thread plays the kernel: for each entry with an ``inblob`` it
writes ``outblob`` (the real GCE quote with the report data replaced), ``provider`` and
``generation``. ``quotes_served`` counts answers; ``entries_left()`` shows cleanup.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tests.unit.controlplane.quote_samples import real_v4, with_report_data


class FakeTsm:
    def __init__(self, root: Path, *, quote: bytes | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.quote = quote if quote is not None else real_v4()
        self.quotes_served = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-tsm", daemon=True)

    def __enter__(self) -> FakeTsm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def entries_left(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir())

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            for entry in list(self.root.iterdir()):
                inblob, outblob = entry / "inblob", entry / "outblob"
                try:
                    if not inblob.exists() or outblob.exists():
                        continue
                    report_data = inblob.read_bytes()
                    if len(report_data) != 64:
                        continue
                    (entry / "provider").write_text("tdx_guest\n")
                    (entry / "generation").write_text("1\n")
                    tmp = entry / ".outblob.tmp"
                    tmp.write_bytes(with_report_data(self.quote, report_data))
                    tmp.rename(outblob)
                    self.quotes_served += 1
                except OSError:
                    continue  # the entry went away under us
