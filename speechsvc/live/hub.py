"""The server's live streams: how many may be open (--max-live-streams), the threads their VAD and decodes
run on (not the default executor, whose threads the file jobs' pipelines hold), and shutdown: every open
stream gets its last finals and a 1001 close (SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from speechsvc.errors import LiveStreamsFull

MAX_DECODE_THREADS = 64
Stop = Callable[[], Awaitable[None]]


class LiveHub:
    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self._open: dict[int, Stop] = {}
        self._next = 0
        self.executor = ThreadPoolExecutor(  # a stereo stream: a decode per channel and its audio's VAD
            max_workers=max(4, min(MAX_DECODE_THREADS, 3 * max_streams)), thread_name_prefix="live-decode"
        )
        self.closing = False

    @property
    def open_streams(self) -> int:
        return len(self._open)

    def check_room(self) -> None:
        """503 live_streams_full before the upgrade when every slot is taken."""
        if self.closing or len(self._open) >= self.max_streams:
            raise LiveStreamsFull(
                f"{self.max_streams} live streams are already open on this server; retry later"
            )

    @contextlib.contextmanager
    def stream(self, stop: Stop) -> Iterator[None]:
        """Hold a slot for one stream; `stop` ends it at shutdown."""
        self.check_room()
        self._next += 1
        number = self._next
        self._open[number] = stop
        try:
            yield
        finally:
            del self._open[number]

    async def shutdown(self) -> None:
        """Every open stream: its last finals, then a 1001 close."""
        self.closing = True
        await asyncio.gather(*(stop() for stop in list(self._open.values())), return_exceptions=True)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
