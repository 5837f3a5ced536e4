"""Return freed audio buffers to the system.

The lockstep decoder runs every channel on a thread of its own, and each thread reads its audio and builds
features in arrays of many megabytes. glibc serves a thread from an arena of its own and raises its mmap
threshold after a big block is freed (up to 32 MB), so such arrays then come from the arenas, which keep
them after they are freed: a 6-channel, 30-minute call grew the server by 666 MB instead of 400. With a
fixed threshold (mallopt M_MMAP_THRESHOLD, which also stops the raising), every block over 1 MiB is its own
mapping and goes back to the system when freed. glibc only; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1024 * 1024


def release_big_blocks() -> bool:
    """Set the fixed mmap threshold; False where the C library has no mallopt (not glibc)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    log.debug("malloc: blocks over %d bytes are mapped on their own: %s", MMAP_THRESHOLD_BYTES, done)
    return done
