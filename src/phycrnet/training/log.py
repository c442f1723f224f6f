"""The training log (CSV, appended while the run trains) and the progress bar."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Any

#: The log is appended to every this many buffered rows or seconds, whichever comes first
#: (so a slow run's log can be followed while it trains).
FLUSH_ROWS = 50
FLUSH_SECONDS = 10.0


class CsvLog:
    """Rows of ``iteration, seconds, lr, loss, <terms>, w_<terms>, param_<name>``.

    ``path`` ``None`` makes every call a no-op. Columns are fixed by the first row of the
    file (later rows fill missing columns with blanks and drop unknown ones).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.flushed_at = time.monotonic()

    def append(self, row: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS or time.monotonic() - self.flushed_at > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.path is None or not self.rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.path.exists() or self.path.stat().st_size == 0
        columns = list(self.rows[0])
        if not new_file:
            with open(self.path, newline="") as handle:
                columns = next(csv.reader(handle), columns)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerows(self.rows)
        self.rows = []
        self.flushed_at = time.monotonic()

    def truncate(self, iteration: int) -> None:
        """Drop the rows written after ``iteration`` (a resumed run goes back to it)."""
        self.rows = []
        if self.path is None or not self.path.exists():
            return
        with open(self.path, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= iteration]
        with open(self.path, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)


class ProgressBar:
    """A rich progress bar with the first loss terms; silent when not on a terminal."""

    def __init__(self, enabled: bool, description: str = "training") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None
        self._last = 0.0
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
        self.bar.start()
        self.task = self.bar.add_task(description, total=1000)

    def update(self, fraction: float, iteration: int, terms: dict[str, float]) -> None:
        if not self.enabled or time.perf_counter() - self._last < 0.25:
            return
        self._last = time.perf_counter()
        shown = "  ".join(f"{k} {v:.2e}" for k, v in list(terms.items())[:4])
        self.bar.update(self.task, completed=1000 * fraction, description=f"it {iteration}  {shown}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
