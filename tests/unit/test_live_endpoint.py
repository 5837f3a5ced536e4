"""The live endpointer (speechsvc.live.endpoint) on scripted VAD probabilities: where an utterance opens and
closes, what audio it carries, the pause that ends it, clicks dropped, the cut of a long one at its
quietest frame, Finalize, and the held audio bounded during silence. One test runs the real Silero VAD on
a real recording."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from speechsvc.live.endpoint import (
    FRAME,
    FRAME_S,
    MAX_UTTERANCE_S,
    MIN_SPEECH_FRAMES,
    PAD,
    ChannelStream,
    Frontend,
    SpeechStart,
    Utterance,
)
from tests.conftest import corpus

SPEECH, SILENCE, DOUBT = 0.9, 0.1, 0.4  # DOUBT: between the silence and speech thresholds


class ScriptedVad:
    """Gives the scripted probability of each whole frame pushed."""

    def __init__(self) -> None:
        self.script: list[float] = []

    def push(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        assert len(samples) % FRAME == 0
        count = len(samples) // FRAME
        out, self.script = self.script[:count], self.script[count:]
        return np.array(out, dtype=np.float32)


def stream(pause_ms: int = 300, speech_final: bool = True) -> ChannelStream:
    channel = ChannelStream(0, pause_ms, speech_final)
    channel.vad = ScriptedVad()  # type: ignore[assignment]
    return channel


def frames(first: int, probs: Sequence[float]) -> npt.NDArray[np.float32]:
    """Audio whose every sample is its frame's number: what an utterance carries says where it was cut."""
    return np.repeat(np.arange(first, first + len(probs), dtype=np.float32), FRAME)


def feed(channel: ChannelStream, probs: Sequence[float], first: int = 0) -> list[object]:
    vad = channel.vad
    assert isinstance(vad, ScriptedVad)
    vad.script += list(probs)
    return list(channel.push(frames(first, probs), arrived=123.0))


def pause_frames(pause_ms: int = 300) -> int:
    return round(pause_ms / 1000 / FRAME_S)


def test_speech_then_the_pause_closes_one_utterance_with_its_padding() -> None:
    channel = stream()
    probs = [SILENCE] * 20 + [SPEECH] * 30 + [SILENCE] * pause_frames()
    events = feed(channel, probs)
    started, utterance = events
    assert started == SpeechStart(0, round(20 * FRAME_S, 3))
    assert isinstance(utterance, Utterance)
    assert utterance.speech_final and not utterance.from_finalize and utterance.heard_at == 123.0
    assert utterance.start_s == pytest.approx((20 * FRAME - PAD) / 16000, abs=1e-3)
    assert len(utterance.audio) == 30 * FRAME + 2 * PAD  # the speech and PAD_S either side
    assert (
        utterance.audio[0] == (20 * FRAME - PAD) // FRAME
        and utterance.audio[-1] == (50 * FRAME + PAD) // FRAME
    )
    assert not channel.speaking and channel.clock_s == pytest.approx(len(probs) * FRAME_S)


def test_a_pause_shorter_than_endpointing_keeps_one_utterance() -> None:
    channel = stream(pause_ms=500)
    gap = pause_frames(500) - 1
    events = feed(channel, [SPEECH] * 10 + [SILENCE] * gap + [SPEECH] * 10 + [SILENCE] * pause_frames(500))
    utterances = [e for e in events if isinstance(e, Utterance)]
    assert len(utterances) == 1 and len([e for e in events if isinstance(e, SpeechStart)]) == 1
    assert utterances[0].audio is not None and len(utterances[0].audio) == (20 + gap) * FRAME + PAD


def test_doubtful_frames_after_speech_count_as_speech_not_after_silence() -> None:
    channel = stream()
    # DOUBT right after speech extends it; after a silent frame it is silence: the pause still ends it
    events = feed(channel, [SPEECH] * 10 + [DOUBT] * 5 + [SILENCE] + [DOUBT] * (pause_frames() - 1))
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert utterance.audio is not None and utterance.audio[-PAD - 1] == 14  # speech ran to the last DOUBT


def test_a_click_is_dropped_and_its_audio_released() -> None:
    channel = stream()
    events = feed(channel, [SPEECH] * (MIN_SPEECH_FRAMES - 1) + [SILENCE] * pause_frames())
    assert [type(e) for e in events] == [SpeechStart]  # it started, and never became an utterance
    assert channel.flush(from_finalize=True) is None


def test_endpointing_false_cuts_at_pauses_but_never_says_speech_final() -> None:
    channel = stream(speech_final=False)
    events = feed(channel, [SPEECH] * 10 + [SILENCE] * pause_frames())
    (utterance,) = [e for e in events if isinstance(e, Utterance)]
    assert not utterance.speech_final


def test_a_long_utterance_is_cut_at_the_quietest_frame_of_its_second_half() -> None:
    channel = stream()
    limit = round(MAX_UTTERANCE_S / FRAME_S)
    probs = [SPEECH] * limit
    probs[limit // 4] = 0.5  # quieter, but in the first half: not a cut
    quietest = limit // 2 + 100
    probs[quietest] = 0.51
    events = feed(channel, [*probs, SPEECH])  # the frame past the limit
    cut = next(e for e in events if isinstance(e, Utterance))
    assert not cut.speech_final and cut.start_s == 0.0
    assert cut.audio is not None and len(cut.audio) == quietest * FRAME
    assert channel.speaking  # the rest stays open
    rest = channel.flush(from_finalize=True)
    assert rest is not None and rest.from_finalize and rest.audio is not None
    assert rest.start_s == pytest.approx((quietest * FRAME - PAD) / 16000, abs=1e-3)
    assert rest.audio[PAD] == quietest


def test_finalize_closes_the_open_utterance_and_open_audio_shows_it() -> None:
    channel = stream()
    assert channel.open_audio() is None
    feed(channel, [SILENCE] * 20 + [SPEECH] * 20)
    snapshot = channel.open_audio()
    assert snapshot is not None and snapshot[0] == pytest.approx((20 * FRAME - PAD) / 16000, abs=1e-3)
    assert len(snapshot[1]) == 20 * FRAME + PAD
    flushed = channel.flush(from_finalize=True)
    assert flushed is not None and flushed.from_finalize and not flushed.speech_final
    assert flushed.audio is not None and len(flushed.audio) == 20 * FRAME + PAD  # no audio after it yet
    assert channel.open_audio() is None and channel.flush(from_finalize=True) is None


def test_silence_holds_no_more_than_the_padding() -> None:
    channel = stream()
    for second in range(60):  # a minute of silence, a second at a time
        feed(channel, [SILENCE] * 31, first=second * 31)
    held = sum(len(chunk) for chunk in channel._chunks)
    assert held <= PAD + FRAME


def test_frontend_keeps_the_channels_apart() -> None:
    frontend = Frontend(300, speech_final=True)
    silence = np.zeros((2, FRAME * 40), dtype=np.float32)
    assert frontend.push(silence) == []
    assert [stream.channel for stream in frontend.channels] == [0, 1]
    assert frontend.state(1) == (pytest.approx(40 * FRAME_S), False)
    assert frontend.flush(from_finalize=True) == [None, None]


def test_real_vad_cuts_a_real_recording_at_its_pauses() -> None:
    import av

    with av.open(str(corpus("jfk.flac"))) as container:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000)
        audio = np.concatenate(
            [f.to_ndarray()[0] for frame in container.decode(audio=0) for f in resampler.resample(frame)]
        )
    frontend = Frontend(300, speech_final=True)
    events = []
    for at in range(0, len(audio), 1600):  # 100 ms frames, as a client sends them
        events += frontend.push(audio[None, at : at + 1600])
    events += [u for u in frontend.flush(from_finalize=False) if u is not None]
    utterances = [e for e in events if isinstance(e, Utterance)]
    starts = [e.at_s for e in events if isinstance(e, SpeechStart)]
    assert len(utterances) >= 3  # JFK pauses between "…Americans", "ask not…for you", "ask what…"
    assert [u.start_s for u in utterances] == sorted(u.start_s for u in utterances)
    assert all(u.audio is not None and 0.3 < u.duration_s < 6 for u in utterances)
    assert starts[0] < 1.0 and utterances[-1].start_s + utterances[-1].duration_s <= len(audio) / 16000 + 0.01
