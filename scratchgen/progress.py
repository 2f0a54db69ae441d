"""Progress a person can read: a bar with an ETA on a terminal, plain lines in a log, nothing when quiet.

Every long-running piece (RNN training, EM, counting a large file, the demo, the benchmark runner)
reports through :class:`Progress`, so all of them behave alike:

- stderr is a terminal: a ``tqdm`` bar with the rate and the time left;
- stderr is not a terminal (a log file, CI): one plain line at most every ``interval`` seconds, and
  one at the end (none when the work stops on an error: the error's own line says what happened);
- ``quiet=True``: nothing (warnings and the final summary are the caller's business).

>>> with Progress(total=3, desc="counting", unit="lines", quiet=True) as p:
...     for _ in range(3):
...         p.update(1)
>>> p.n
3
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["Progress"]


class Progress:
    """A progress report of ``total`` units (``None`` when the total is unknown).

    Parameters
    ----------
    total : float or None
    desc : str
        What is progressing ("training", "counting 3-grams").
    unit : str
        What is counted ("steps", "tokens", "s").
    quiet : bool
        Report nothing.
    stream : file, default sys.stderr
    interval : float
        Seconds between plain lines when the stream is not a terminal.
    """

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        *,
        quiet: bool = False,
        stream: IO[str] | None = None,
        interval: float = 10.0,
    ):
        self.total, self.desc, self.unit, self.quiet = total, desc, unit, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.n: float = 0
        self._postfix = ""
        self._start = time.monotonic()
        self._last_line = self._start
        self._bar: Any = None
        if not quiet and _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=True, smoothing=0.1
            )

    def update(self, n: float = 1, **postfix: Any) -> None:
        """Add ``n`` units; ``postfix`` values (``loss=1.23``) are shown beside the count."""
        self.n += n
        if postfix:
            self._postfix = "  ".join(f"{k} {_fmt(v)}" for k, v in postfix.items())
        if self.quiet:
            return
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix_str(self._postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self._line()

    def write(self, message: str) -> None:
        """A line of its own (an evaluation, a warning) that does not break the bar."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self, finished: bool = True) -> None:
        """End the report: the bar closed, or (not a terminal) the last plain line, unless ``finished`` is
        False (the work stopped on an error: the error is then the one line a log gets, not a count)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self.quiet and self.n and finished:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(finished=exc_type is None)

    def _line(self) -> None:
        elapsed = time.monotonic() - self._start
        done = f"{_fmt(self.n)}/{_fmt(self.total)}" if self.total else _fmt(self.n)
        rate = f", {self.n / elapsed:,.1f} {self.unit}/s" if elapsed > 0 else ""
        eta = ""
        if self.total and 0 < self.n < self.total and elapsed > 0:
            eta = f", about {(self.total - self.n) * elapsed / self.n:,.0f} s left"
        post = f"  {self._postfix}" if self._postfix else ""
        print(f"{self.desc}: {done} {self.unit} ({elapsed:,.0f} s{rate}{eta}){post}", file=self.stream, flush=True)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
