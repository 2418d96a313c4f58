"""Progress as plain lines, for logs and pipes (ours; not from the paper).

On a terminal ``ssae`` draws progress bars; where standard output is a pipe or a file (a job
log, ``| tee``) a bar is a stream of carriage returns. There the training prints one plain line
every ``train.log_every`` steps (:func:`log_line`), a line when it resumes and when it
calibrates, and the calibration a line per stage (:class:`TrainLog`), each flushed at once.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def is_pipe(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default: standard output) is not a terminal: a pipe, a file, a
    notebook's captured output."""
    stream = sys.stdout if stream is None else stream
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return True


def duration(seconds: float | None) -> str:
    """``1h05m``, ``4m07s``, ``12s``; ``?`` for an unknown or infinite duration."""
    if seconds is None or not seconds == seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def log_line(step: int, total: int, loss: float, steps_per_s: float, eta_s: float | None) -> str:
    """One line of training progress: ``step 1200/30000 (4%) loss 0.012345 3.21 steps/s ETA 2h29m``."""
    share = f" ({100 * step / total:.0f}%)" if total else ""
    return (f"step {step}/{total}{share} loss {loss:.6g} {steps_per_s:.3g} steps/s "
            f"ETA {duration(eta_s)}")


class TrainLog:
    """The plain lines of one training: :meth:`step` prints :func:`log_line` every ``every``
    steps and at the last step (steps/s and ETA measured since the log was made, so a resumed
    run is timed from where it resumed), :meth:`resumed` and :meth:`calibrating` one line each,
    and :meth:`say` (pass it as ``log`` to :func:`ssae.calibration.calibrate_model`) any line.
    Prints nothing unless ``enabled``: by default when standard output is a pipe."""

    def __init__(self, total: int, every: int, start: int = 0, enabled: bool | None = None,
                 out: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.every, self.start = int(total), max(1, int(every)), int(start)
        self.out = out
        self.enabled = is_pipe(out) if enabled is None else bool(enabled)
        self.clock = clock
        self.began = clock()

    def say(self, line: str) -> None:
        if self.enabled:
            print(line, file=self.out or sys.stdout, flush=True)

    def resumed(self, run_dir, step: int) -> None:
        self.say(f"resuming {run_dir} from step {step} of {self.total}")

    def calibrating(self, n_val: int) -> None:
        self.say(f"calibrating the scoring on {n_val} validation image{'s' if n_val != 1 else ''}")

    def step(self, step: int, loss: float, remaining_s: float | None = None) -> None:
        """``remaining_s``: what is left of a time budget, which caps the ETA."""
        if not self.enabled or (step % self.every and step != self.total):
            return
        seconds = self.clock() - self.began
        done = step - self.start
        rate = done / seconds if seconds > 0 and done > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else None
        if remaining_s is not None:
            eta = max(0.0, remaining_s) if eta is None else min(eta, max(0.0, remaining_s))
        self.say(log_line(step, self.total, loss, rate, eta))
