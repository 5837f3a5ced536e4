"""Diarization on real voices (issue 11): mono calls mixed from the corpus's real speakers and generated
ones, with known turns. The share of speech time on the right speaker and DER (0.25 s collar) against the
truth; one speaker stays one; an exact count is kept; and the real tiny.en transcript split by speaker."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechsvc.asr.models import ModelRegistry
from speechsvc.audio.isolate import DecodeLimits
from speechsvc.diarize import SpeakerCount, diarize_channel, load_encoder, load_segmenter, speaker_turns
from speechsvc.diarize.speakers import speaker_spans
from speechsvc.jobs.model import JobRequest
from speechsvc.service.pipeline import run_pipeline
from tests.conftest import JFK_TEXT, STEREO_TEXTS, corpus, write_wav
from tests.diarize_calls import mixed_call, scores, voices
from tests.integration.helpers import normalise

pytestmark = pytest.mark.model


# Measured on this data: 0.93-1.00 of speech time right and DER 0.00-0.07 (benchmarks/bench_diarize.py);
# the bounds keep a margin. The two espeak female voices (f4, f2) are variants of one synthetic voice: to
# CAM++ their centroids stand 0.24 apart, a distance within one real speaker's, so the estimate finds one
# speaker there (issue 24, round 5; GE2E's rules found two from round 3 on). Given the count, CAM++ splits
# them (test below).
@pytest.mark.parametrize("names", [("jfk", "wizard"), ("m3", "f4"), ("wizard", "horizon"), ("jfk", "f4"),
                                   ("f2", "m3")])  # fmt: skip
@pytest.mark.parametrize(("min_turn_s", "gap_s"), [(2.0, 0.4), (4.0, 0.4), (2.0, 0.0)])
def test_two_speakers_with_turns_of_2_s_or_more(
    names: tuple[str, str], min_turn_s: float, gap_s: float
) -> None:
    call = mixed_call(names, min_turn_s=min_turn_s, gap_s=gap_s, length_s=45.0)
    spans = speaker_turns(call.audio, SpeakerCount())
    assert len({span.speaker for span in spans}) == 2  # estimated
    right, der = scores(call, spans)
    assert right >= 0.90 and der <= 0.10, (right, der)


def test_the_service_takes_the_turns_edges_from_the_segmentation_model() -> None:
    """speaker_turns (the pipeline's) cuts the speaker model's spans where pyannote's segmentation model
    hears the voice change and widens them over the speech it hears (speechsvc.diarize.boundaries). On
    this call (three voices, no pause between turns) that moves edges: measured 0.974 of the speech time
    right with the speaker model alone, 0.985 with the segmentation model. (On most of this file's calls,
    clean audio with pauses or distinct voices, it changes nothing.)"""
    call = mixed_call(("jfk", "wizard", "m3"), min_turn_s=2.0, gap_s=0.0, length_s=45.0)
    alone = speaker_spans(load_encoder(), call.audio, SpeakerCount())
    turns = speaker_turns(call.audio, SpeakerCount())
    assert turns != alone
    assert speaker_spans(load_encoder(), call.audio, SpeakerCount(), segmenter=load_segmenter()) == turns
    (right_alone, _), (right, der) = scores(call, alone), scores(call, turns)
    assert right >= right_alone - 0.01 and right >= 0.95 and der <= 0.05, (right_alone, right, der)


@pytest.mark.parametrize(("min_turn_s", "gap_s"), [(2.0, 0.4), (2.0, 0.0)])
def test_two_variants_of_one_synthetic_voice_are_split_when_the_count_is_given(
    min_turn_s: float, gap_s: float
) -> None:
    call = mixed_call(("f4", "f2"), min_turn_s=min_turn_s, gap_s=gap_s, length_s=45.0)
    spans = speaker_turns(call.audio, SpeakerCount(exact=2, low=2, high=2))
    assert len({span.speaker for span in spans}) == 2
    right, der = scores(call, spans)
    assert right >= 0.95 and der <= 0.05, (right, der)


def test_three_speakers_estimated_and_exact() -> None:
    call = mixed_call(("jfk", "wizard", "m3"), min_turn_s=2.0, length_s=45.0)
    for count in (SpeakerCount(), SpeakerCount(exact=3, low=3, high=3)):
        spans = speaker_turns(call.audio, count)
        assert len({span.speaker for span in spans}) == 3
        right, der = scores(call, spans)
        assert right >= 0.90 and der <= 0.10, (count, right, der)


def test_two_real_voices_with_one_short_turn_each_are_two_speakers() -> None:
    """Issue 24: turns under 5 s. 2.6 s of JFK, then 5 s of the wizard (8 s in all): the count rule before
    (a speaker held 6 windows and 10 % of them) found one speaker here; an interjection of about 2 s counts."""
    call = mixed_call(("jfk", "wizard"), min_turn_s=2.0, length_s=8.5)
    assert [name for _, _, name in call.turns] == ["jfk", "wizard"]
    spans = speaker_turns(call.audio, SpeakerCount())
    assert len({span.speaker for span in spans}) == 2
    right, der = scores(call, spans)
    assert right >= 0.90 and der <= 0.10, (right, der)


@pytest.mark.parametrize("name", ["jfk", "m3", "wizard"])
def test_one_speaker_is_not_split_in_two(name: str) -> None:
    call = mixed_call((name,), min_turn_s=2.0, length_s=40.0)
    assert {span.speaker for span in speaker_turns(call.audio, SpeakerCount())} == {0}


def test_speakers_are_numbered_by_first_appearance_and_bounds_hold() -> None:
    call = mixed_call(("m3", "jfk"), min_turn_s=2.0, length_s=30.0)
    spans = speaker_turns(call.audio, SpeakerCount(low=1, high=1))
    assert {span.speaker for span in spans} == {0}
    spans = speaker_turns(call.audio, SpeakerCount())
    assert spans[0].speaker == 0 and spans[0].start < 1.0


def test_real_transcript_split_by_speaker(tiny_registry: ModelRegistry, tmp_path: Path) -> None:
    """JFK, then a generated agent, then JFK again: the JFK words on one speaker, the agent's on the other."""
    call = mixed_call(("jfk", "m3"), min_turn_s=2.0, length_s=30.0)
    path = write_wav(tmp_path / "mixed.wav", [call.audio])
    request = JobRequest(model="tiny.en", speakers=SpeakerCount())
    result = run_pipeline("mixed", path, "audio/wav", request, tiny_registry.get(), max_duration_s=600,
                          max_channels=8, limits=DecodeLimits(), scratch_dir=tmp_path / "s", on_progress=lambda _: None)  # fmt: skip
    segments = result["channels"][0]["segments"]
    said = {speaker: normalise(" ".join(s["text"] for s in segments if s["speaker"] == speaker)).split()
            for speaker in ("spk_0", "spk_1")}  # fmt: skip
    jfk_words = set(normalise(JFK_TEXT).split())
    assert sum(w in jfk_words for w in said["spk_0"]) >= 0.8 * len(said["spk_0"]) > 0, said
    assert sum(w in jfk_words for w in said["spk_1"]) <= 0.2 * len(said["spk_1"]), said
    assert all(w["speaker"] == s["speaker"] for s in segments for w in s["words"])
    assert set(result["stats"]["talk_time_s"]) == {"spk_0", "spk_1"}


def test_each_channel_of_a_stereo_call_keeps_its_one_speaker(
    tiny_registry: ModelRegistry, tmp_path: Path
) -> None:
    request = JobRequest(model="tiny.en", labels=("agent", "customer"), speakers=SpeakerCount())
    result = run_pipeline("stereo", corpus("stereo_diarization.wav"), "audio/wav", request, tiny_registry.get(),
                          max_duration_s=600, max_channels=8, limits=DecodeLimits(), scratch_dir=tmp_path / "s",
                          on_progress=lambda _: None)  # fmt: skip
    assert result["speakers"] == {"agent": ["spk_0"], "customer": ["spk_0"]}
    assert set(result["stats"]["talk_time_s"]) == {"agent/spk_0", "customer/spk_0"}
    assert result["text"].startswith("agent/spk_0: ") or result["text"].startswith("customer/spk_0: ")
    assert normalise(STEREO_TEXTS[1]).split()[0] in normalise(result["text"])


def test_silence_and_a_transcript_without_speech(tmp_path: Path) -> None:
    from speechsvc.asr.engine import ChannelTranscript

    silent = voices()["jfk"][:0]
    empty = ChannelTranscript("en", 1.0, 0.0, 0.0)
    assert diarize_channel(silent, empty, SpeakerCount(), keep_words=True).segments == []
