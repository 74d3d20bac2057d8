"""Outputs appear whole or not at all (docs/design.md, decision 8).

Every file sitewatch writes is first written under a hidden temporary name
beside its final one (`.NAME.HOST-PID.partial`, so two processes, on one
machine or on nodes sharing a folder, never share one) and renamed over the
final name when complete; a failure, an interrupt or a full disk removes the
temporary file and leaves any earlier file untouched. A reader never sees
half a file. What a killed process left behind is removed by the next run
on the same machine (`remove_stale_partials`). A command that writes a set of
files (`infer diff`, `sites`, `track`) writes them into a hidden folder and
moves them into place only when all stand (`output_set`): a failure leaves the
earlier set as it was, not the failed run's first files beside its rest. A stop
asked for while the set moves (Ctrl-C, a scheduler's SIGTERM) is acted on once it
stands (`stop_signals_held`); only SIGKILL can cut a move short.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from infer.errors import OutputError


def _writer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def partial_path(path: Path, suffix: str = "") -> Path:
    """The temporary name `atomic_write` uses for `path` in this process; `suffix` for drivers that want one."""
    return path.with_name(f".{path.name}.{_writer()}.partial{suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_partials(path: Path) -> int:
    """Remove temporary files for `path` left by processes of this machine that no longer run; returns how many."""
    host = socket.gethostname()
    removed = 0
    for candidate in path.parent.glob(f".{path.name}.*.partial*"):
        writer = candidate.name[len(path.name) + 2:].split(".partial", 1)[0]
        name, _, pid = writer.rpartition("-")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def atomic_write(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; on leaving the block without an error it replaces `path`.

    An `OSError` in the block or the rename (a full disk, a lost permission) becomes `OutputError`
    naming `path`, after the temporary file is removed.
    """
    path = Path(path)
    temporary = partial_path(path, suffix)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {write_failure(exc, path.parent)}") from None
    finally:
        temporary.unlink(missing_ok=True)


#: The hidden folder of an output folder that holds its lock files.
LOCK_FOLDER = ".sitewatch"


def lock_path(out_dir: Path, name: str) -> Path:
    """The lock file for `name` (a scene's stem, a summary's file name, a set of outputs) in `out_dir`."""
    return out_dir / LOCK_FOLDER / "locks" / f"{name}.lock"


@contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive `flock` on `path` for the block; yields False (and holds nothing) when `wait` is
    False and another process holds it.

    The kernel drops the lock when the process ends, however it ends (a kill, a crash). Lock files stay
    where they are: unlinking one another process may be waiting on would let two processes hold locks
    on two different files.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


#: The signals a user or a batch scheduler stops a command with (Ctrl-C, `kill`, a closed terminal).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold back `STOP_SIGNALS` for the block, then act on the first that came as it would have acted:
    Python's handler (Ctrl-C's KeyboardInterrupt) or the system's (SIGTERM ends the process).

    Handlers can only be set from the main thread; elsewhere the block runs as it is. A signal whose handler
    Python did not set is left to it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    kept = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    kept = {number: handler for number, handler in kept.items() if handler is not None}
    for number in kept:
        signal.signal(number, lambda got, frame: came.append(got))
    try:
        yield
    finally:
        for number, handler in kept.items():
            signal.signal(number, handler)
        if came:
            signal.raise_signal(came[0])


@contextmanager
def output_set(folder: Path, replaces: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a hidden folder in `folder` to write a set of outputs into, under their final names (subfolders
    too); leaving the block without an error moves each over its final name in `folder`, an error moves none
    (an `OSError` becomes `OutputError` naming `folder`). The folder is removed either way.

    `replaces`: glob patterns (in `folder`) of files an earlier set may hold and this one need not (one chart
    per site, fewer sites now): once the new set stands, those it does not hold are removed.

    Two runs writing sets into one folder at once move theirs one after the other (`locked`), so the
    folder holds one run's whole set, never a mix of both; a stop asked for during the move waits for its
    end (`stop_signals_held`)."""
    folder = Path(folder)
    remove_stale_partials(folder / "outputs")
    staging = partial_path(folder / "outputs")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        with locked(lock_path(folder, "outputs")), stop_signals_held():
            moved = set()
            for source in sorted(p for p in staging.rglob("*") if p.is_file()):
                target = folder / source.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)
                moved.add(target)
            for old in {p for pattern in replaces for p in folder.glob(pattern)} - moved:
                old.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {folder}: {write_failure(exc, folder)}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: Less room than this left where a write failed: it failed for want of room.
FULL_BYTES = 2**20


def write_failure(exc: Exception, folder: Path | None = None) -> str:
    """Why a write into `folder` failed, in words: the system's reason; for GDAL's (whose errors name no
    system reason: libtiff's "Seek error at scanline 3584") "No space left on device" when `folder`'s file
    system has less than `FULL_BYTES` left, with GDAL's own words; else GDAL's words, or the likely reason."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = (str(exc).splitlines() or [""])[0]
    said = "" if "previous exception" in text else text
    if folder is not None and _free_bytes(folder) < FULL_BYTES:
        return f"No space left on device ({said})" if said else "No space left on device"
    return said or "the write failed (is the disk full?)"


def _free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on `folder`'s file system (the nearest existing folder's)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return FULL_BYTES


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a UTF-8 text file through `atomic_write`."""
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


__all__ = ["LOCK_FOLDER", "STOP_SIGNALS", "atomic_write", "lock_path", "locked", "output_set", "partial_path",
           "remove_stale_partials", "stop_signals_held", "write_failure", "write_text_atomic"]
