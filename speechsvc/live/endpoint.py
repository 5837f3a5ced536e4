"""Endpointing: each channel's stream cut into utterances by its VAD. An utterance opens at the first speech
frame and closes after `pause_ms` of silence (Deepgram's `endpointing`), at a Finalize, at the end of the
stream, or at MAX_UTTERANCE_S without a pause, cut at the quietest frame of its second half (Whisper reads
30 s windows: a longer utterance would be decoded in pieces cut blindly)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ
from speechsvc.live.vad import FRAME, StreamingVad

THRESHOLD = 0.5  # Silero's speech threshold, and the silence one below it (faster-whisper's defaults)
NEG_THRESHOLD = 0.35
PAD_S = 0.2  # audio kept either side of the speech, as faster-whisper pads its VAD chunks
MIN_SPEECH_FRAMES = 4  # an utterance with less speech (~130 ms) is a click or a breath: dropped
MAX_UTTERANCE_S = 28.0
FRAME_S = FRAME / SAMPLE_RATE_HZ
PAD = int(PAD_S * SAMPLE_RATE_HZ)


@dataclass(frozen=True)
class SpeechStart:
    channel: int
    at_s: float


@dataclass(frozen=True)
class Utterance:
    """A closed utterance: its audio from `start_s` (stream time), and when its last speech arrived."""

    channel: int
    start_s: float
    audio: npt.NDArray[np.float32] | None  # None: a Finalize found nothing open (an empty final)
    speech_final: bool
    heard_at: float
    from_finalize: bool = False

    @property
    def duration_s(self) -> float:
        return 0.0 if self.audio is None else len(self.audio) / SAMPLE_RATE_HZ


Event = SpeechStart | Utterance


class ChannelStream:
    def __init__(self, channel: int, pause_ms: int, speech_final: bool) -> None:
        self.channel = channel
        self.pause_frames = max(1, round(pause_ms / 1000 / FRAME_S))
        self.speech_final = speech_final  # false with endpointing=false: pauses cut, never speech_final
        self.vad = StreamingVad()
        self._chunks: list[npt.NDArray[np.float32]] = []
        self._base = 0  # sample index of the first sample held
        self._probs: list[float] = []  # of the open utterance's frames
        self._frame = 0  # frames judged so far
        self._start: int | None = None  # first frame of the open utterance
        self._last_speech = 0
        self._speech_frames = 0
        self._silence = 0
        self._heard_at = 0.0

    @property
    def clock_s(self) -> float:
        return self._frame * FRAME_S

    @property
    def speaking(self) -> bool:
        return self._start is not None

    def _audio(self, start: int, end: int) -> npt.NDArray[np.float32]:
        audio = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [audio]
        return audio[max(0, start - self._base) : max(0, end - self._base)].copy()

    def _drop_before(self, sample: int) -> None:
        if sample <= self._base or not self._chunks:
            return
        audio = np.concatenate(self._chunks)[sample - self._base :]
        self._chunks, self._base = [audio], sample

    def push(self, samples: npt.NDArray[np.float32], arrived: float) -> list[Event]:
        self._chunks.append(samples)
        events: list[Event] = []
        for prob in self.vad.push(samples):
            events += self._judge(float(prob), arrived)
            self._frame += 1
        if self._start is None:
            self._drop_before(self._frame * FRAME - PAD)
        return events

    def _judge(self, prob: float, arrived: float) -> list[Event]:
        frame = self._frame
        start: list[Event] = []
        if self._start is None:
            if prob < THRESHOLD:
                return []
            self._start, self._probs, self._speech_frames, self._silence = frame, [], 0, 0
            start.append(SpeechStart(self.channel, round(frame * FRAME_S, 3)))
        self._probs.append(prob)
        if prob >= THRESHOLD or (prob >= NEG_THRESHOLD and not self._silence):
            self._last_speech, self._silence, self._heard_at = frame, 0, arrived
            self._speech_frames += 1
            if frame + 1 - self._start >= MAX_UTTERANCE_S / FRAME_S:
                return start + self._cut()
            return start
        self._silence += 1
        if self._silence >= self.pause_frames:
            return start + self._close(self.speech_final)
        return start

    def _utterance(
        self, start_frame: int, end: int, speech_final: bool, from_finalize: bool = False
    ) -> Utterance:
        begin = max(self._base, start_frame * FRAME - PAD)
        return Utterance(self.channel, round(begin / SAMPLE_RATE_HZ, 3), self._audio(begin, end), speech_final,
                         self._heard_at, from_finalize)  # fmt: skip

    def _close(self, speech_final: bool, from_finalize: bool = False) -> list[Event]:
        assert self._start is not None
        end = min((self._last_speech + 1) * FRAME + PAD, self._base + sum(len(c) for c in self._chunks))
        found = self._speech_frames >= MIN_SPEECH_FRAMES
        event = self._utterance(self._start, end, speech_final, from_finalize) if found else None
        self._start = None
        self._drop_before(end if found else (self._frame + 1) * FRAME - PAD)
        return [event] if event is not None else []

    def _cut(self) -> list[Event]:
        """No pause for MAX_UTTERANCE_S: cut at the quietest frame of the second half; the rest stays open."""
        assert self._start is not None
        half = len(self._probs) // 2
        quietest = half + int(np.argmin(self._probs[half:-1]))
        cut = (self._start + quietest) * FRAME
        event = self._utterance(self._start, cut, False)
        self._drop_before(cut - PAD)
        self._start += quietest
        self._probs = self._probs[quietest:]
        self._speech_frames = len(self._probs)
        return [event]

    def flush(self, from_finalize: bool) -> Utterance | None:
        """The open utterance, closed now (Finalize, the end of the stream)."""
        if self._start is None:
            return None
        self._last_speech = self._frame  # everything heard so far belongs to it
        events = self._close(False, from_finalize)
        return events[0] if events and isinstance(events[0], Utterance) else None

    def open_audio(self) -> tuple[float, npt.NDArray[np.float32]] | None:
        """The open utterance so far (for an interim result)."""
        if self._start is None:
            return None
        begin = max(self._base, self._start * FRAME - PAD)
        return round(begin / SAMPLE_RATE_HZ, 3), self._audio(begin, self._frame * FRAME)


class Frontend:
    """Every channel of a stream, thread-safe: PyAV's thread or a worker pushes, the session flushes."""

    def __init__(self, pause_ms: int, speech_final: bool) -> None:
        self._pause_ms = pause_ms
        self._speech_final = speech_final
        self._lock = threading.Lock()
        self.channels: list[ChannelStream] = []

    def push(self, samples: npt.NDArray[np.float32]) -> list[Event]:
        """`samples`: (channels, n) at 16 kHz."""
        arrived = time.monotonic()
        with self._lock:
            while len(self.channels) < samples.shape[0]:
                self.channels.append(ChannelStream(len(self.channels), self._pause_ms, self._speech_final))
            return [
                event
                for number, row in enumerate(samples)
                for event in self.channels[number].push(row, arrived)
            ]

    def flush(self, from_finalize: bool) -> list[Utterance | None]:
        """Each channel's open utterance closed (None where nothing was open)."""
        with self._lock:
            return [channel.flush(from_finalize) for channel in self.channels]

    def open_audio(self, channel: int) -> tuple[float, npt.NDArray[np.float32]] | None:
        with self._lock:
            return self.channels[channel].open_audio() if channel < len(self.channels) else None

    def state(self, channel: int) -> tuple[float, bool]:
        """(stream seconds heard, speaking) of a channel."""
        with self._lock:
            stream = self.channels[channel]
            return stream.clock_s, stream.speaking
