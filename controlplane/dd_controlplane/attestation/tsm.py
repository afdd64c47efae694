"""configfs-tsm: ask the kernel for a TDX quote over 64 bytes of report data.

The Linux ABI (Documentation/ABI/testing/configfs-tsm): under the report root
(``/sys/kernel/config/tsm/report``) ``mkdir`` an entry, write the 64-byte report data
to ``inblob``, read the quote from ``outblob``, ``rmdir`` the entry. ``provider`` names
the backend (``tdx_guest``) and ``generation`` counts writes, so a value other than 1
means another writer raced us on the same entry and the quote is not ours.

The root is a setting, so tests point it at a plain directory with a small emulator
thread. Two allowances make that possible and are harmless on configfs: ``outblob`` is
awaited briefly when it is not there yet, and an entry that ``rmdir`` cannot remove
(a plain directory still holding files) is removed file by file.

Blocking file I/O: callers run ``read_quote`` in a thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import AttestationError

__all__ = ["TsmReport", "read_quote", "tsm_available"]

REPORT_DATA_LEN = 64


@dataclass(frozen=True)
class TsmReport:
    outblob: bytes
    provider: str


def tsm_available(root: Path) -> bool:
    return root.is_dir()


def read_quote(root: Path, report_data: bytes, *, timeout: float = 10.0) -> TsmReport:
    """One quote for ``report_data`` (exactly 64 bytes) from the configfs-tsm ``root``."""
    if len(report_data) != REPORT_DATA_LEN:
        raise ValueError("report data must be exactly 64 bytes")
    if not tsm_available(root):
        raise AttestationError(f"not a TDX guest (no configfs-tsm at {root})")
    entry = root / f"dd-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        entry.mkdir()
    except OSError as exc:
        raise AttestationError(f"configfs-tsm refused a new report entry: {exc.strerror}") from exc
    try:
        (entry / "inblob").write_bytes(report_data)
        outblob = _read_outblob(entry / "outblob", timeout)
        provider = _read_text(entry / "provider")
        generation = _read_text(entry / "generation")
        if generation not in ("", "1"):
            raise AttestationError(
                f"configfs-tsm entry was written {generation} times: another writer raced us"
            )
        return TsmReport(outblob=outblob, provider=provider)
    finally:
        _remove_entry(entry)


def _read_outblob(path: Path, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            reason = exc.strerror
            raise AttestationError(f"configfs-tsm could not produce a quote: {reason}") from exc
        if data:
            return data
        if time.monotonic() > deadline:
            raise AttestationError(f"configfs-tsm produced no quote within {timeout:.0f}s")
        time.sleep(0.01)


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _remove_entry(entry: Path) -> None:
    try:
        entry.rmdir()
    except OSError:
        with contextlib.suppress(OSError):
            shutil.rmtree(entry)
