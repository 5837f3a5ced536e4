"""Keep the memory of many decoding threads bounded.

The lockstep decoder runs every channel on a thread of its own, and each thread reads its audio and builds
features in arrays of many megabytes. glibc gives threads arenas of their own (up to eight per core), and
an arena keeps what was freed in it for reuse by its threads: a 6-channel, 30-minute call grew the server
by 552 MB with the default, by 400 MB with two arenas (M_ARENA_MAX), the number measured best. A fixed mmap
threshold (every big block mapped on its own) bounded memory as well but cost a quarter of the throughput.
glibc only; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def limit_arenas() -> bool:
    """At most ARENAS malloc arenas; False where the C library has no mallopt (not glibc)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_ARENA_MAX, ARENAS))
    log.debug("malloc: at most %d arenas: %s", ARENAS, done)
    return done
