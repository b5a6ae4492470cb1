"""A tiny progress bar on stderr, and the results table; standard library only."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """``with Progress("enqueue", total) as bar: bar.update(done)``.

    On a terminal it redraws one line at most ten times a second; elsewhere (CI logs) it writes a line at
    each quarter, so a log shows that a long phase moves without filling up with redraws.
    """

    def __init__(self, label: str, total: int, *, unit: str = "", stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(int(total), 0)
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.done = 0
        self._drawn = 0.0
        self._quarter = -1

    def __enter__(self) -> Progress:
        self.update(0)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def line(self) -> str:
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(round(fraction * WIDTH))
        elapsed = time.monotonic() - self.started
        unit = f" {self.unit}" if self.unit else ""
        return (
            f"  {self.label:<34} [{'#' * filled}{'.' * (WIDTH - filled)}] {fraction:4.0%} "
            f"{self.done}/{self.total}{unit} {elapsed:6.1f}s"
        )

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.tty:
            if now - self._drawn >= 0.1 or done >= self.total:
                self.stream.write("\r" + self.line())
                self.stream.flush()
                self._drawn = now
            return
        quarter = int(4 * min(done / self.total, 1.0)) if self.total else 4
        if quarter != self._quarter and quarter < 4:
            self._quarter = quarter
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        self.stream.write(("\r" if self.tty else "") + self.line() + "\n")
        self.stream.flush()


def note(text: str) -> None:
    """A line on stderr, beside the progress bars (stdout holds the table and the JSON line)."""
    sys.stderr.write(f"{text}\n")
    sys.stderr.flush()


def table(rows: list[tuple[str, str, str, str]], *, headers: tuple[str, str, str, str]) -> str:
    """A plain text table: figure, measured, target, verdict."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(4)]
    rule = "  ".join("-" * width for width in widths)
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(headers, widths, strict=True)), rule]
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def verdict(value: float | int | None, ok) -> str:
    """``met``, ``MISSED`` or ``n/a`` (not measured) for a figure and its target."""
    if value is None:
        return "n/a"
    return "met" if ok(value) else "MISSED"


def show(value: object, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value}{unit}"
