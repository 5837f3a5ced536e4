"""One live stream: audio in, utterances out of each channel's endpointer, finals decoded in order per
channel, interims about once a second, messages out in order. Protocol-free: the socket handler
(speechsvc.api.live) feeds it bytes and control messages and sends what it emits."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ, TranscribeOptions, Transcriber
from speechsvc.errors import LiveBufferFull, LiveStreamError, LiveUndecodableAudio
from speechsvc.live.decoder import decode_utterance, options_for
from speechsvc.live.endpoint import Event, Frontend, SpeechStart, Utterance
from speechsvc.live.pcm import ContainerPcm, RawPcm
from speechsvc.live.recording import CallRecorder
from speechsvc.live.speakers import LiveSpeakers
from speechsvc.operations.metrics import Metrics
from speechsvc.redact import Redaction
from speechsvc.redact.cues import Cue
from speechsvc.redact.live import LiveRedactor
from speechsvc.results.deepgram_live import (
    LiveShape,
    live_words,
    metadata_message,
    results_message,
    speech_started,
    utterance_end,
)
from speechsvc.results.deepgram_words import DgWord

log = logging.getLogger(__name__)

TICK_S = 0.1  # how often a channel looks whether an interim or an UtteranceEnd is due
INTERIM_EVERY_S = 1.0  # of new audio in the open utterance between two interims
DEFAULT_PAUSE_MS = 300  # endpointing when not given, and the pause that cuts with endpointing=false
# a container stream that gives no audio for this many bytes is not audio (PyAV's Ogg demuxer skips garbage
# looking for the next page, and waits for more, for ever)
MAX_UNDECODED_BYTES = 256 * 1024
CONTAINER_END_S = 30.0
CONTAINER_CATCH_UP_S = 5.0  # at a Finalize, how long PyAV may take to read the bytes received before it  # the container thread's last frames, at the end of a stream
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class LiveOptions:
    """A stream's settings, from its query (speechsvc.api.live_params)."""

    encoding: str | None = None  # linear16 | mulaw | alaw; None: a container (Ogg/WebM Opus, WAV, …)
    sample_rate: int = SAMPLE_RATE_HZ
    channels: int = 1
    multichannel: bool = False
    interim_results: bool = False
    endpointing_ms: int | None = DEFAULT_PAUSE_MS  # None: endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    diarize: bool = False  # a mono stream's speakers (speechsvc.live.speakers)
    decoder: TranscribeOptions = field(default_factory=TranscribeOptions)
    redaction: Redaction | None = None  # redact=…: finals redacted, interims too or held back (redact.live)


class _Channel:
    def __init__(self, redactor: LiveRedactor | None = None) -> None:
        self.redactor = redactor
        self.items: deque[Utterance] = deque()
        self.wake = asyncio.Event()
        self.interim_at = 0  # samples of the open utterance at its last interim
        self.last_word_end: float | None = None  # for UtteranceEnd
        self.speakers: LiveSpeakers | None = None  # diarize=true: made on its first final


class LiveSession:
    def __init__(
        self, options: LiveOptions, shape: LiveShape, engine: Transcriber, executor: Executor, send: Send, *,
        buffer_s: float, metrics: Metrics | None = None, recorder: CallRecorder | None = None,
    ) -> None:  # fmt: skip
        self.options = options
        self.shape = shape
        self._engine = engine
        self._executor = executor
        self._send = send
        self._buffer_s = buffer_s
        self._metrics = metrics
        self.recorder = recorder
        self._loop = asyncio.get_running_loop()
        pause = options.endpointing_ms if options.endpointing_ms is not None else DEFAULT_PAUSE_MS
        self.frontend = Frontend(pause, speech_final=options.endpointing_ms is not None)
        self._raw = (
            RawPcm(options.encoding, options.sample_rate, options.channels) if options.encoding else None
        )
        self._container: ContainerPcm | None = None
        self._container_done = asyncio.Event()
        self._channels: list[_Channel] = []
        self._cues: list[Cue] = []  # what the channels said before a number (speechsvc.redact.cues)
        self._workers: list[asyncio.Task[None]] = []
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_all(), name="live-send")
        self._pending_s = 0.0
        self._finals_open = 0  # utterances queued or being decoded: interims wait for them
        self._sha256 = hashlib.sha256()
        self.samples = 0  # per channel, received
        self._undecoded = 0  # container bytes received since its last audio
        self.failure: LiveStreamError | None = None
        self.failed = asyncio.Event()
        self.finished = False

    # --- audio in ------------------------------------------------------------------------------------------

    async def audio(self, data: bytes) -> None:
        self._sha256.update(data)
        if self._raw is not None:
            # the live threads, never the default executor: the file jobs' pipelines hold its threads
            events = await self._loop.run_in_executor(self._executor, self._push_raw, data)
            self._on_events(events)
            return
        if self._container is None:
            self._container = ContainerPcm(self._push_threaded, self._ended_threaded)
        self._container.feed(data)
        self._undecoded += len(data)
        if self._undecoded > MAX_UNDECODED_BYTES:
            self._fail(LiveUndecodableAudio(f"{self._undecoded} bytes of the stream gave no audio"))
        if self._container.waiting > self._buffer_s * 32000:  # ~4 x the bytes of 64 kb/s Opus
            self._fail(LiveBufferFull(f"more than {self._buffer_s:g} s of audio waits to be decoded"))

    def _push_raw(self, data: bytes) -> list[Event]:
        assert self._raw is not None
        return self._push(self._raw.decode(data))

    def _push(self, samples: npt.NDArray[np.float32]) -> list[Event]:
        if samples.shape[1] == 0:
            return []
        if self.recorder is not None:
            self.recorder.write(samples)
        self.samples += samples.shape[1]
        if self._metrics is not None:
            self._metrics.live_audio_seconds.inc(samples.shape[1] / SAMPLE_RATE_HZ)
        return self.frontend.push(samples)

    def _push_threaded(self, samples: npt.NDArray[np.float32]) -> None:  # PyAV's thread
        self._undecoded = 0
        events = self._push(samples)
        if events:
            self._loop.call_soon_threadsafe(self._on_events, events)

    def _ended_threaded(self, error: BaseException | None) -> None:  # PyAV's thread, once
        self._loop.call_soon_threadsafe(self._container_ended, error)

    def _container_ended(self, error: BaseException | None) -> None:
        self._container_done.set()
        if error is not None and not self.finished:
            self._fail(LiveUndecodableAudio(f"the stream's audio cannot be decoded: {error}"))

    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            while len(self._channels) <= event.channel:
                self._add_channel()
            if isinstance(event, SpeechStart):
                if self.options.vad_events:
                    self._emit(speech_started(self.shape, event.channel, event.at_s))
                continue
            self._pending_s += event.duration_s
            self._finals_open += 1
            channel = self._channels[event.channel]
            channel.items.append(event)
            channel.wake.set()
        if self._pending_s > self._buffer_s:
            self._fail(LiveBufferFull(f"more than {self._buffer_s:g} s of speech waits to be decoded: send the "
                                      "audio at most as fast as it is spoken"))  # fmt: skip

    def _add_channel(self) -> None:
        number = len(self._channels)
        redaction = self.options.redaction
        self._channels.append(_Channel(None if redaction is None else LiveRedactor(redaction, self._cues)))
        self._workers.append(asyncio.create_task(self._run_channel(number), name=f"live-channel-{number}"))

    # --- control ------------------------------------------------------------------------------------------

    async def finalize(self, from_finalize: bool = True) -> None:
        """Close every channel's open utterance now (Finalize; the end of the stream)."""
        if self._raw is not None:
            self._on_events(await self._loop.run_in_executor(self._executor, self._push, self._raw.flush()))
        deadline = time.monotonic() + CONTAINER_CATCH_UP_S
        while self._container is not None and self._container.waiting and time.monotonic() < deadline:
            await asyncio.sleep(TICK_S / 5)  # PyAV reads what came before the Finalize first
        flushed = await self._loop.run_in_executor(self._executor, self.frontend.flush, from_finalize)
        if not flushed and from_finalize:
            flushed = [None]  # no audio yet: one empty final all the same
        while len(self._channels) < len(flushed):
            self._add_channel()
        now = time.monotonic()
        for number, utterance in enumerate(flushed):
            if utterance is None and from_finalize:  # nothing open: an empty final says the flush is done
                at_s = self.frontend.state(number)[0] if number < len(self.frontend.channels) else 0.0
                utterance = Utterance(number, at_s, None, False, now, True)
            if utterance is not None:
                self._on_events([utterance])

    async def finish(self) -> dict[str, Any]:
        """The end of the stream (CloseStream, the client gone, shutdown): the last finals, then Metadata
        (returned, and sent)."""
        self.finished = True
        if self._container is not None:
            self._container.end()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._container_done.wait(), CONTAINER_END_S)
        await self.finalize(from_finalize=False)
        for channel in self._channels:
            channel.items.append(_END)
            channel.wake.set()
        await asyncio.gather(*self._workers, return_exceptions=True)
        metadata = metadata_message(self.shape, self._sha256.hexdigest(), self.samples / SAMPLE_RATE_HZ,
                                    max(1, len(self._channels)))  # fmt: skip
        self._emit(metadata)
        await self.drain()
        return metadata

    async def drain(self) -> None:
        """Every message emitted so far handed to the socket."""
        self._outbox.put_nowait(None)
        with contextlib.suppress(Exception):
            await self._sender

    def abort(self) -> None:
        for task in (*self._workers, self._sender):
            task.cancel()
        if self._container is not None:
            self._container.end()

    def _fail(self, error: LiveStreamError) -> None:
        if self.failure is None:
            self.failure = error
            self.failed.set()

    # --- messages out -------------------------------------------------------------------------------------

    def _emit(self, message: dict[str, Any]) -> None:
        self._outbox.put_nowait(message)

    async def _send_all(self) -> None:
        while (message := await self._outbox.get()) is not None:
            await self._send(message)

    # --- decoding -----------------------------------------------------------------------------------------

    async def _run_channel(self, number: int) -> None:
        channel = self._channels[number]
        try:
            while True:
                if not channel.items:
                    channel.wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(channel.wake.wait(), TICK_S)
                if channel.items:
                    item = channel.items.popleft()
                    if item is _END:
                        if channel.redactor is not None:
                            channel.redactor.flush()
                        return
                    await self._final(number, channel, item)
                else:
                    if channel.redactor is not None:
                        channel.redactor.release_due(*self.frontend.state(number))
                    self._utterance_end(number, channel)
                    if self.options.interim_results and not self.finished:
                        await self._interim(number, channel)
        except Exception as exc:
            log.exception("event=live_decode_error request_id=%s", self.shape.request_id)
            self._fail(LiveStreamError(f"decoding failed: {exc}"))

    async def _decode(self, number: int, audio: npt.NDArray[np.float32], interim: bool) -> Any:
        options = options_for(self.options.decoder, interim)
        return await self._loop.run_in_executor(self._executor, decode_utterance, self._engine,
                                                self.shape.request_id, number, audio, options)  # fmt: skip

    async def _final(self, number: int, channel: _Channel, item: Utterance) -> None:
        transcript = None if item.audio is None else await self._decode(number, item.audio, False)
        words = live_words(transcript, item.start_s, item.duration_s, self.shape, number)
        words = await self._with_speaker(channel, item, words)
        if words:
            channel.last_word_end = words[-1].end
        channel.interim_at = 0
        self._pending_s -= item.duration_s
        self._finals_open -= 1

        def emit(sent: list[DgWord]) -> None:
            self._emit(results_message(self.shape, number, item.start_s, item.duration_s, sent, is_final=True,
                                       speech_final=item.speech_final, from_finalize=item.from_finalize))  # fmt: skip

        if channel.redactor is None:
            emit(words)
        else:  # a final ending in an open number waits for the next one; a Finalize flushes
            channel.redactor.final(words, emit, hold=not item.from_finalize)
        if self._metrics is not None and item.audio is not None:
            self._metrics.live_final_latency.observe(time.monotonic() - item.heard_at)

    async def _with_speaker(self, channel: _Channel, item: Utterance, words: list[DgWord]) -> list[DgWord]:
        if not self.options.diarize or not words or item.audio is None:
            return words
        if channel.speakers is None:
            channel.speakers = LiveSpeakers()
        speaker = await self._loop.run_in_executor(self._executor, channel.speakers.assign, item.audio)
        return [replace(word, speaker=speaker) for word in words]

    async def _interim(self, number: int, channel: _Channel) -> None:
        if self._finals_open:
            return
        snapshot = self.frontend.open_audio(number)
        if snapshot is None or len(snapshot[1]) - channel.interim_at < INTERIM_EVERY_S * SAMPLE_RATE_HZ:
            if snapshot is None:
                channel.interim_at = 0
            return
        start_s, audio = snapshot
        channel.interim_at = len(audio)
        transcript = await self._decode(number, audio, True)
        now_open = self.frontend.open_audio(number)
        if channel.items or now_open is None or now_open[0] != start_s:
            return  # its final is on the way: an interim now would come after it
        words = live_words(transcript, start_s, len(audio) / SAMPLE_RATE_HZ, self.shape, number)
        if channel.redactor is not None:
            shown = channel.redactor.interim(words)
            if shown is None:
                return  # a span may be open: nothing until its final
            words = shown
        self._emit(results_message(self.shape, number, start_s, len(audio) / SAMPLE_RATE_HZ, words,
                                   is_final=False, speech_final=False, from_finalize=False))  # fmt: skip

    def _utterance_end(self, number: int, channel: _Channel) -> None:
        if self.options.utterance_end_ms is None or channel.last_word_end is None:
            return
        if channel.redactor is not None and channel.redactor.holding:  # after the held final
            return
        clock_s, speaking = self.frontend.state(number)
        if not speaking and clock_s >= channel.last_word_end + self.options.utterance_end_ms / 1000:
            self._emit(utterance_end(self.shape, number, channel.last_word_end))
            channel.last_word_end = None


_END = Utterance(-1, 0.0, None, False, 0.0)  # a channel's last item
