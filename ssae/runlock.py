"""One writer per run folder: ``RUN/lock``, held while ``ssae train`` writes the folder.

Two trainings into one folder would overwrite each other's checkpoints. :func:`lock_run` takes
an exclusive ``flock`` on ``RUN/lock`` and writes the holder's process id and host name into
it; a second training into the same folder fails at once with one line naming the holder.
The operating system releases the lock when its process ends, however it ends (``kill -9``
included), so a lock file left behind by a killed training names a process that no longer
holds it: the next training takes it over and says so in a note. A training that ends
normally removes the file. Where the file system cannot lock files (no ``fcntl``, or some
network file systems) training goes on after a note that nothing guards the folder.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
from pathlib import Path

from .errors import SsaeError

LOCK = "lock"


def _note(text: str) -> None:
    print(f"ssae: note: {text}", file=sys.stderr, flush=True)


def _holder(fd: int) -> str:
    """Who the lock file says holds it: ``process PID on HOST``, or ``another process`` while
    the holder has not yet written its name."""
    words = os.pread(fd, 512, 0).decode(errors="replace").split()
    return f"process {words[0]} on {words[1]}" if len(words) >= 2 else "another process"


def _acquire(path: Path) -> int | None:
    """The locked file descriptor of ``path`` (created if need be), None where locking is not
    possible here; a one-line :class:`SsaeError` naming the holder when another process holds it."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        _note(f"cannot lock {path} on this system; make sure no other training writes into {path.parent}")
        return None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            held = e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
            holder = _holder(fd) if held else ""
            os.close(fd)
            if held:
                raise SsaeError(f"{path.parent} is being trained by {holder} (lock file {path}); wait for it "
                                f"to finish, or train into another --out folder") from None
            _note(f"cannot lock {path} ({e.strerror}); make sure no other training writes into {path.parent}")
            return None
        try:  # the previous holder may have removed the file between our open and our lock
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    if os.fstat(fd).st_size:
        _note(f"took over the lock file {path} of {_holder(fd)}, which no longer holds it "
              f"(a training that was killed)")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def lock_run(run_dir):
    """Hold the lock of the run folder ``run_dir`` (which must exist) for the ``with`` block.

    Raises :class:`SsaeError` naming the holder (``process PID on HOST``) when another process
    holds it. The lock file is removed when the block ends."""
    path = Path(run_dir) / LOCK
    fd = _acquire(path)
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):  # removed while still held, so no one locks a removed file
                path.unlink()
            os.close(fd)
