"""Probe and decode in a child process with a time and memory limit.

FFmpeg's demuxers and decoders are C code fed with untrusted bytes: a crash or a hang must fail one job,
not the server and every job in it. Each probe or decode runs in a child forked from a forkserver
(PyAV and numpy preloaded, so a child starts in milliseconds) under RLIMIT_AS, and is killed when its
time is up. Decoded channels are streamed by the child to raw float32 files, so the child's memory
stays flat however long the recording; the parent maps those files read-only (np.memmap) instead of
reading them, so the server's own memory holds only the windows the engine is working on, not the
recording (a 30-minute 6-channel file is 690 MB decoded).

Like any multiprocessing start method but fork, the forkserver imports the parent's __main__ module in
its children: a script that calls into this module needs the `if __name__ == "__main__":` guard
(speechsvc's own entry points have it).
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import resource
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from speechsvc import errors
from speechsvc.audio import decode
from speechsvc.audio.layout import ChannelRef
from speechsvc.errors import UndecodableAudio

POLL_S = 0.1
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["speechsvc.audio.decode"])


@dataclass(frozen=True)
class DecodeLimits:
    """Per child: wall-clock seconds and address-space bytes."""

    probe_timeout_s: float = 30.0
    decode_timeout_s: float = 600.0
    memory_bytes: int = 1024**3


def _run_child(conn: Connection, memory_bytes: int, operation: str, args: tuple[Any, ...]) -> None:
    """In the child: apply the limit, run the operation, send ("ok", value) or ("error", class, text, param)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        if operation == "probe":
            path, media_type, max_channels = args
            conn.send(("ok", decode.probe(path, media_type, max_channels=max_channels)))
        else:
            path, media_type, refs, max_duration_s, out_dir, max_decoded_bytes = args
            conn.send(
                ("ok", _decode_to_files(path, media_type, refs, max_duration_s, out_dir, max_decoded_bytes))
            )
    except errors.SpeechsvcError as exc:
        conn.send(("error", type(exc).__name__, exc.message, exc.param))
    except MemoryError:
        conn.send(
            ("error", "UndecodableAudio", f"decoding needed more than {memory_bytes // 2**20} MiB", None)
        )
    except Exception as exc:  # anything else a damaged file provokes in PyAV
        conn.send(("error", "UndecodableAudio", f"the audio could not be decoded: {exc}"[:300], None))
    finally:
        conn.close()


def _decode_to_files(
    path: Path,
    media_type: str,
    refs: Sequence[ChannelRef],
    max_duration_s: float,
    out_dir: Path,
    max_decoded_bytes: int | None,
) -> list[int]:
    files: list[BinaryIO] = [open(out_dir / f"{position}.f32", "wb") for position in range(len(refs))]  # noqa: SIM115

    def write(position: int, samples: decode.Samples) -> None:
        files[position].write(samples.tobytes())

    try:
        return decode.decode_to(
            path, media_type, refs, write, max_duration_s=max_duration_s, max_decoded_bytes=max_decoded_bytes
        )
    finally:
        for handle in files:
            handle.close()


def _in_child(
    operation: str,
    args: tuple[Any, ...],
    *,
    timeout_s: float,
    memory_bytes: int,
    should_stop: Callable[[], None] | None = None,
) -> Any:
    parent, child = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(target=_run_child, args=(child, memory_bytes, operation, args), daemon=True)
    process.start()
    child.close()
    deadline = time.monotonic() + timeout_s
    try:
        while not parent.poll(POLL_S):
            if should_stop is not None:
                should_stop()  # raises JobCanceled; the finally below kills the child
            if not process.is_alive() and not parent.poll(0):
                raise _crashed(process.exitcode)
            if time.monotonic() > deadline:
                raise UndecodableAudio(f"decoding took longer than {timeout_s:g} s; the file was given up")
        try:
            message = parent.recv()
        except EOFError:
            process.join(1.0)
            raise _crashed(process.exitcode) from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5.0)
        parent.close()
    if message[0] == "ok":
        return message[1]
    _, name, text, param = message
    error_class = getattr(errors, name, None)
    if not (isinstance(error_class, type) and issubclass(error_class, errors.SpeechsvcError)):
        error_class = UndecodableAudio
    raise error_class(text, param=param)


def _crashed(exitcode: int | None) -> UndecodableAudio:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        return UndecodableAudio(f"the decoder crashed on this file ({name}); the file is damaged or hostile")
    return UndecodableAudio(f"the decoder stopped unexpectedly (exit code {exitcode})")


def probe(path: Path, media_type: str, *, max_channels: int, limits: DecodeLimits) -> decode.ProbeResult:
    """decode.probe, in a child process."""
    result: decode.ProbeResult = _in_child(
        "probe", (path, media_type, max_channels), timeout_s=limits.probe_timeout_s,
        memory_bytes=limits.memory_bytes,
    )  # fmt: skip
    return result


def decode_channels(
    path: Path,
    media_type: str,
    refs: Sequence[ChannelRef],
    *,
    max_duration_s: float,
    scratch_dir: Path,
    limits: DecodeLimits,
    should_stop: Callable[[], None] | None = None,
    max_decoded_bytes: int | None = None,
) -> list[decode.Samples]:
    """decode.decode_channels, in a child process that streams the channels to scratch_dir; each channel
    comes back memory-mapped. The files are unlinked at once: the mappings keep them readable, and the
    kernel frees them when the last array over them is gone (no scratch file outlives the job)."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    try:
        _in_child(
            "decode", (path, media_type, list(refs), max_duration_s, scratch_dir, max_decoded_bytes),
            timeout_s=limits.decode_timeout_s, memory_bytes=limits.memory_bytes, should_stop=should_stop,
        )  # fmt: skip
        return [_mapped(scratch_dir / f"{position}.f32") for position in range(len(refs))]
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)


def _mapped(path: Path) -> decode.Samples:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.float32)
    return np.memmap(path, dtype=np.float32, mode="r")


def release_pages(samples: decode.Samples) -> None:
    """Drop a memory-mapped channel's pages from this process's resident set (MADV_DONTNEED). Always safe
    on a read-only file mapping: a page read again is faulted back in from the file. Called once a window
    is done with, so that the resident set holds the windows in use, not every page ever read."""
    mapping = getattr(samples, "_mmap", None)  # np.memmap keeps its mmap.mmap here (slices share it)
    if mapping is not None and hasattr(mapping, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            mapping.madvise(mmap.MADV_DONTNEED)


def ensure_started() -> None:
    """Start the forkserver now (at service start-up) rather than on the first request."""
    with contextlib.suppress(Exception):
        process = _CONTEXT.Process(target=os.getpid)
        process.start()
        process.join()
