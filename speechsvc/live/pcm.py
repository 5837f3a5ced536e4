"""A live stream's bytes as 16 kHz float32 samples, one row per channel: raw PCM (linear16, mu-law, A-law)
at any rate, or a container (Ogg/WebM Opus, WAV, …) decoded incrementally by PyAV on a thread of its own."""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ

Samples = npt.NDArray[np.float32]  # (channels, samples) at 16 kHz
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
MAX_CHANNELS = len(LAYOUTS)
RAW_ENCODINGS = ("linear16", "mulaw", "alaw")
# a live container is probed from its first bytes, not from seconds of them (FFmpeg's default: 5 MB, 5 s).
# Not fflags=nobuffer: it drops the packets read while probing (the first 20-64 ms, every time shifted).
PROBE_OPTIONS = {"probesize": "4096", "analyzeduration": "0"}


def _g711(alaw: bool) -> npt.NDArray[np.int16]:
    """ITU-T G.711: the 256 codes as linear 16-bit samples."""
    codes = np.arange(256, dtype=np.int32)
    if alaw:
        code = codes ^ 0x55
        exponent, mantissa = (code >> 4) & 7, code & 0x0F
        magnitude = np.where(
            exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
        )
        values = np.where(code & 0x80, magnitude, -magnitude)
    else:
        code = ~codes & 0xFF
        exponent, mantissa = (code >> 4) & 7, code & 0x0F
        magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
        values = np.where(code & 0x80, -magnitude, magnitude)
    return values.astype(np.int16)


G711 = {"mulaw": _g711(alaw=False), "alaw": _g711(alaw=True)}


def _resampler(channels: int) -> Any:
    import av

    return av.AudioResampler(format="fltp", layout=LAYOUTS[channels], rate=SAMPLE_RATE_HZ)


def _planar(frames: list[Any], channels: int) -> Samples:
    arrays = [frame.to_ndarray() for frame in frames]
    return np.concatenate(arrays, axis=1) if arrays else np.zeros((channels, 0), np.float32)


class RawPcm:
    """Interleaved raw PCM frames -> samples; a frame may end mid-sample (the rest waits for the next)."""

    def __init__(self, encoding: str, sample_rate: int, channels: int) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels
        self._width = 2 if encoding == "linear16" else 1
        self._rest = b""
        self._resampler = _resampler(channels) if sample_rate != SAMPLE_RATE_HZ else None

    def decode(self, data: bytes) -> Samples:
        data = self._rest + data
        whole = len(data) - len(data) % (self._width * self.channels)
        data, self._rest = data[:whole], data[whole:]
        if self._width == 2:
            pcm = np.frombuffer(data, dtype="<i2")
        else:
            pcm = G711[self.encoding][np.frombuffer(data, dtype=np.uint8)]
        if self._resampler is None:
            return (pcm.reshape(-1, self.channels).T / 32768.0).astype(np.float32)
        import av

        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16).reshape(1, -1), format="s16",
                                           layout=LAYOUTS[self.channels])  # fmt: skip
        frame.sample_rate = self.sample_rate
        return _planar(self._resampler.resample(frame), self.channels)

    def flush(self) -> Samples:
        if self._resampler is None:
            return np.zeros((self.channels, 0), np.float32)
        return _planar(self._resampler.resample(None), self.channels)


class _Pipe(io.RawIOBase):
    """The bytes received so far, read by PyAV on its thread; a read waits for more until the end."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._ready = threading.Condition()
        self._ended = False
        self.waiting = 0  # bytes received and not yet read

    def readable(self) -> bool:
        return True

    def feed(self, data: bytes) -> None:
        with self._ready:
            self._chunks.append(data)
            self.waiting += len(data)
            self._ready.notify()

    def end(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify()

    def readinto(self, buffer: Any) -> int:
        with self._ready:
            while not self._chunks and not self._ended:
                self._ready.wait()
            if not self._chunks:
                return 0
            chunk = self._chunks.popleft()
            size = min(len(buffer), len(chunk))
            buffer[:size] = chunk[:size]
            if size < len(chunk):
                self._chunks.appendleft(chunk[size:])
            self.waiting -= size
            return size


class ContainerPcm:
    """A container stream decoded as it arrives: `sink` gets the samples of each decoded frame, `done` is
    called once at the end with None or the error that stopped it (undecodable audio)."""

    def __init__(self, sink: Callable[[Samples], None], done: Callable[[BaseException | None], None]) -> None:
        self._pipe = _Pipe()
        self._sink = sink
        self._done = done
        self._thread = threading.Thread(target=self._run, name="live-container", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._pipe.waiting

    def feed(self, data: bytes) -> None:
        self._pipe.feed(data)

    def end(self) -> None:
        self._pipe.end()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        import av

        error: BaseException | None = None
        try:
            with av.open(self._pipe, mode="r", options=PROBE_OPTIONS) as container:
                if not container.streams.audio:
                    raise ValueError("the stream has no audio")
                stream = container.streams.audio[0]
                channels = min(stream.codec_context.channels or 1, MAX_CHANNELS)
                resampler = _resampler(channels)
                for frame in container.decode(stream):
                    self._sink(_planar(resampler.resample(frame), channels))
                self._sink(_planar(resampler.resample(None), channels))
        except Exception as exc:  # PyAV's errors: the audio is not what the stream said
            error = exc
        self._done(error)
