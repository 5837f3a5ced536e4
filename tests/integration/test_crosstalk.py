"""Cross-talk suppression (issue 12) on calls built from the real corpus voices with synthetic leaks:
the estimate (delay within 5 ms, gain within 3 dB, over a grid), no leak on clean calls or duplicated
channels, what is muted (the leak) and what is not (each party's own speech, double-talk)."""

import numpy as np
import pytest

from speechsvc.audio import crosstalk
from tests.crosstalk_calls import FRAME_S, leaky_call, turns


def energy(audio: np.ndarray) -> float:
    return float(np.sum(np.asarray(audio, dtype=np.float64) ** 2))


@pytest.mark.parametrize("gain_db", [-6.0, -12.0, -20.0])
@pytest.mark.parametrize("delay_ms", [10.0, 35.0, 60.0])
def test_leaks_are_found_with_their_delay_and_gain(gain_db: float, delay_ms: float) -> None:
    call = leaky_call(gain_db, delay_ms)
    leaks = {(leak.source, leak.target): leak for leak in crosstalk.estimate([call.agent, call.customer])}
    assert set(leaks) == {(0, 1), (1, 0)}
    for (source, _), leak in leaks.items():
        true_delay = delay_ms if source == 0 else delay_ms + 7
        assert abs(leak.delay / 16 - true_delay) <= 5.0
        assert abs(leak.gain_db - gain_db) <= 3.0


def test_clean_calls_and_duplicated_channels_are_untouched() -> None:
    agent, customer = turns(["jfk", "horizon"], ["wizard"])
    assert crosstalk.estimate([agent, customer]) == []
    assert crosstalk.estimate([agent, agent.copy()]) == []  # mono saved as stereo: not cross-talk
    assert crosstalk.estimate([agent]) == []
    channels = [agent, customer]
    assert crosstalk.suppress(channels, []) == channels


def test_the_leak_is_muted_and_own_speech_is_kept() -> None:
    call = leaky_call(-12.0, 30.0)
    leaks = crosstalk.estimate([call.agent, call.customer])
    agent, customer = crosstalk.suppress([call.agent, call.customer], leaks)
    for mine, after, before in ((call.clean[0], agent, call.agent), (call.clean[1], customer, call.customer)):
        leak_only = before - mine
        kept_own = energy(np.where(after != 0, mine, 0)) / energy(mine)
        left_leak = energy(np.where(after != 0, leak_only, 0)) / energy(leak_only)
        assert kept_own >= 0.98, kept_own  # the party's own speech stays
        assert left_leak <= 0.25, left_leak  # most of the copy is gone (the rest is near own speech)
    assert crosstalk.muted_seconds(leaks, 1) > 3.0


def test_double_talk_survives_on_both_channels() -> None:
    call = leaky_call(-12.0, 30.0, overlap_s=1.5)
    leaks = crosstalk.estimate([call.agent, call.customer])
    assert {(leak.source, leak.target) for leak in leaks} == {(0, 1), (1, 0)}
    agent, customer = crosstalk.suppress([call.agent, call.customer], leaks)
    for mine, after in ((call.clean[0], agent), (call.clean[1], customer)):
        assert energy(np.where(after != 0, mine, 0)) / energy(mine) >= 0.98


def test_a_drifting_gain_is_followed() -> None:
    call = leaky_call(-12.0, 30.0, drift_db=8.0)
    leaks = crosstalk.estimate([call.agent, call.customer])
    assert len(leaks) == 2
    for leak in leaks:
        assert abs(leak.gain_db + 12.0) <= 3.0
    _agent, customer = crosstalk.suppress([call.agent, call.customer], leaks)
    assert energy(np.where(customer != 0, call.clean[1], 0)) / energy(call.clean[1]) >= 0.98


def test_frame_size_is_what_the_helpers_assume() -> None:
    assert crosstalk.FRAME / crosstalk.RATE_HZ == FRAME_S


def test_the_word_level_guard_drops_only_echoes_in_leak_spans() -> None:
    from speechsvc.asr.engine import ChannelTranscript, Segment
    from speechsvc.service.pipeline import _drop_echoes

    def transcript(*segments: tuple[float, float, str]) -> ChannelTranscript:
        result = ChannelTranscript("en", 1.0, 10.0, 10.0)
        result.segments.extend(Segment(start, end, text, ()) for start, end, text in segments)
        return result

    frames = int(10.0 / FRAME_S)
    leak_span = np.zeros(frames, dtype=bool)
    leak_span[100:300] = True  # 2-6 s of channel 1 is explained by channel 0's copy
    leak = crosstalk.Leak(0, 1, 480, -12.0, leak_span, np.zeros(frames, dtype=bool))
    source = transcript((2.0, 5.0, " Ask not what your country can do for you."),
                        (6.4, 7.9, " Ask not what your country can do for you."))  # fmt: skip
    target = transcript(
        (2.03, 5.03, " Ask not what your country can do for you."),  # the echo: dropped
        (6.5, 8.0, " Ask not what your country can do for you."),  # the same words in the own voice: kept
        (3.0, 4.0, " Sure, go on."),  # other words during the leak: kept
    )
    kept = _drop_echoes([source, target], [leak])[1]
    assert [(s.start, s.text) for s in kept.segments] == [(6.5, " Ask not what your country can do for you."),
                                                           (3.0, " Sure, go on.")]  # fmt: skip
