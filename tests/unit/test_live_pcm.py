"""A live stream's bytes as samples (speechsvc.live.pcm): raw linear16 and G.711 against FFmpeg's own
decoders, frames that end mid-sample, resampling, and containers (Ogg and WebM Opus, WAV) fed in small
pieces from another thread as a socket would, with garbage reported, never hung on."""

from __future__ import annotations

import itertools
import threading
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from speechsvc.live.pcm import ContainerPcm, RawPcm
from tests.conftest import FIXTURES, corpus

DONE_TIMEOUT_S = 30.0


def ffmpeg_decode(codec: str, data: bytes) -> npt.NDArray[np.float32]:
    """Raw mono bytes decoded by FFmpeg's decoder (through PyAV), as floats."""
    context = av.CodecContext.create(codec, "r")
    context.sample_rate, context.layout = 8000, "mono"
    frames = context.decode(av.Packet(data))
    return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames]).astype(np.float32) / 32768


@pytest.mark.parametrize(("encoding", "codec"), [("mulaw", "pcm_mulaw"), ("alaw", "pcm_alaw")])
def test_g711_matches_ffmpeg_for_every_code(encoding: str, codec: str) -> None:
    codes = bytes(range(256)) * 64  # every code; 16 384 samples at 8 kHz
    ours = RawPcm(encoding, 16000, 1).decode(codes)  # at 16 kHz: no resampling, the table alone
    assert ours.shape == (1, len(codes))
    np.testing.assert_array_equal(ours[0], ffmpeg_decode(codec, codes))


def test_linear16_interleaved_and_split_mid_sample() -> None:
    rng = np.random.default_rng(7)
    pcm = rng.integers(-32768, 32767, size=(4000, 2), dtype=np.int16)  # (frames, channels)
    data = pcm.astype("<i2").tobytes()
    whole = RawPcm("linear16", 16000, 2).decode(data)
    np.testing.assert_array_equal(whole, pcm.T / 32768.0)
    pieces = RawPcm("linear16", 16000, 2)
    cuts = [0, 1, 3, 7, 1001, 8003, len(data)]  # mid-sample and mid-frame
    parts = [pieces.decode(data[a:b]) for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def test_8khz_is_resampled_to_16khz_keeping_the_tone() -> None:
    seconds, tone_hz = 2.0, 440.0
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (np.sin(2 * np.pi * tone_hz * t) * 16000).astype("<i2")
    raw = RawPcm("linear16", 8000, 1)
    samples = np.concatenate([raw.decode(pcm[a : a + 800].tobytes()) for a in range(0, len(pcm), 800)] +
                             [raw.flush()], axis=1)  # fmt: skip
    assert samples.shape[0] == 1 and abs(samples.shape[1] - 16000 * seconds) <= 64
    spectrum = np.abs(np.fft.rfft(samples[0]))
    assert np.fft.rfftfreq(samples.shape[1], 1 / 16000)[np.argmax(spectrum)] == pytest.approx(tone_hz, abs=2)


class Collected:
    def __init__(self) -> None:
        self.parts: list[npt.NDArray[np.float32]] = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def sink(self, samples: npt.NDArray[np.float32]) -> None:
        self.parts.append(samples)

    def ended(self, error: BaseException | None) -> None:
        self.error = error
        self.done.set()

    @property
    def samples(self) -> npt.NDArray[np.float32]:
        return np.concatenate([p for p in self.parts if p.shape[1]], axis=1)


def stream_container(data: bytes, piece: int = 4096) -> Collected:
    out = Collected()
    container = ContainerPcm(out.sink, out.ended)
    for at in range(0, len(data), piece):
        container.feed(data[at : at + piece])
    container.end()
    assert out.done.wait(DONE_TIMEOUT_S), "the container thread never ended"
    container.join(DONE_TIMEOUT_S)
    return out


def whole_file(path: Path) -> npt.NDArray[np.float32]:
    """The file decoded at once by PyAV, at 16 kHz."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", rate=16000)
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        frames += resampler.resample(None)
    return np.concatenate([frame.to_ndarray() for frame in frames], axis=1)


@pytest.mark.parametrize("name", ["jfk.ogg", "jfk.webm"])
def test_opus_containers_decode_as_they_arrive_from_their_first_packet(name: str) -> None:
    out = stream_container((FIXTURES / name).read_bytes())
    expected = whole_file(
        FIXTURES / name
    )  # every packet: none lost to the probe (fflags=nobuffer lost 20 ms)
    assert out.error is None and out.samples.shape == expected.shape
    np.testing.assert_allclose(out.samples, expected, atol=1e-4)
    assert np.abs(out.samples).max() > 0.1  # speech, not silence


def test_a_wav_stream_keeps_its_channels(tmp_path: Path) -> None:
    path = corpus("stereo_diarization.wav")
    out = stream_container(path.read_bytes(), piece=1000)
    with wave.open(str(path)) as wav:
        expected = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2).T / 32768.0
    assert out.error is None and out.samples.shape == expected.shape
    np.testing.assert_allclose(out.samples, expected, atol=1e-6)


def test_garbage_is_an_error_not_a_hang() -> None:
    out = stream_container(np.random.default_rng(3).bytes(64 * 1024))
    assert out.error is not None and out.parts == []


def test_the_bytes_waiting_are_counted_until_read() -> None:
    out = Collected()
    container = ContainerPcm(out.sink, out.ended)
    container.feed(b"")  # nothing yet: PyAV waits
    assert container.waiting == 0
    data = (FIXTURES / "jfk.ogg").read_bytes()
    container.feed(data)
    container.end()
    assert out.done.wait(DONE_TIMEOUT_S) and container.waiting == 0 and out.error is None
