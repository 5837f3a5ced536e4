"""The turns' edges from the segmentation model (speechsvc.diarize.boundaries), with a fake speaker model:
a clip's embedding says which of two levels of audio it holds more of."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speechsvc.diarize import speakers
from speechsvc.diarize.boundaries import MIN_PIECE_S, refined
from speechsvc.diarize.clustering import SpeakerCount
from speechsvc.diarize.segmentation import SAMPLE_RATE_HZ, Segmentation

RATE = SAMPLE_RATE_HZ
CENTROIDS = np.eye(2, dtype=np.float32)  # speaker 0: positive audio, speaker 1: negative


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    speaker: int


class Levels:
    """Embeds a clip as speaker 0 when its samples are mostly positive, else speaker 1."""

    def __init__(self) -> None:
        self.clips: list[tuple[float, float]] = []

    def embed_clip(self, wav: np.ndarray) -> np.ndarray:
        self.clips.append((float(len(wav)), float(np.mean(wav))))
        return np.array([1.0, 0.0] if np.mean(wav > 0) > 0.5 else [0.0, 1.0], np.float32)


def audio_of(*turns: tuple[float, float, int], seconds: float = 10.0) -> np.ndarray:
    audio = np.zeros(int(seconds * RATE), np.float32)
    for start, end, speaker in turns:
        audio[int(start * RATE) : int(end * RATE)] = 0.1 if speaker == 0 else -0.1
    return audio


def test_a_short_turn_inside_a_span_is_cut_out_and_labelled_on_its_own() -> None:
    audio = audio_of((0.0, 2.6, 0), (2.6, 3.6, 1), (3.6, 4.0, 0))
    spans = [Span(0.0, 4.0, 0)]  # the windows gave all of it to speaker 0
    encoder = Levels()
    out = refined(encoder, audio, spans, CENTROIDS, Segmentation([2.6, 3.6], []))
    assert out == [(0.0, 2.6, 0), (2.6, 3.6, 1), (3.6, 4.0, 0)]
    assert len(encoder.clips) == 3


def test_a_piece_too_short_keeps_its_spans_speaker_and_a_span_without_a_change_keeps_its_label() -> None:
    audio = audio_of((0.0, 2.0, 0), (2.0, 2.0 + MIN_PIECE_S / 2, 1), (5.0, 7.0, 1))
    spans = [Span(0.0, 2.0 + MIN_PIECE_S / 2, 0), Span(5.0, 7.0, 0)]  # the second span mislabelled
    encoder = Levels()
    out = refined(encoder, audio, spans, CENTROIDS, Segmentation([2.0], []))
    assert out == [(0.0, 2.15, 0), (5.0, 7.0, 0)]
    assert len(encoder.clips) == 1  # only the long piece was embedded
    # a change within EDGE_S of a span's end is its end, not a cut
    assert refined(Levels(), audio, [Span(0.0, 2.0, 0)], CENTROIDS, Segmentation([1.97], [])) == [
        (0.0, 2.0, 0)
    ]


def test_with_one_speaker_nothing_is_cut() -> None:
    audio = audio_of((0.0, 2.0, 0), (2.0, 4.0, 1))
    encoder = Levels()
    out = refined(encoder, audio, [Span(0.0, 4.0, 0)], CENTROIDS[:1], Segmentation([2.0], []))
    assert out == [(0.0, 4.0, 0)] and encoder.clips == []


def test_speech_the_model_hears_beside_a_span_joins_it() -> None:
    audio = audio_of()
    spans = [Span(1.0, 2.0, 0), Span(3.0, 4.0, 1), Span(6.0, 7.0, 0)]
    heard = [(int(0.5 * RATE), int(4.4 * RATE)), (int(8.0 * RATE), int(9.0 * RATE))]
    out = refined(Levels(), audio, spans, CENTROIDS, Segmentation([], heard))
    # 0.5-1.0 to the first span, the gap 2.0-3.0 half to each, 4.0-4.4 to the second; 6-7 untouched;
    # 8-9 touches no span: no one's
    assert out == [(0.5, 2.5, 0), (2.5, 4.4, 1), (6.0, 7.0, 0)]


def test_a_speaker_the_count_asked_for_is_not_lost_to_the_edges() -> None:
    """num_speakers=2 (or min_speakers=2): if every piece of one speaker went to the other, the spans stay
    as the speaker model labelled them; with the count estimated, the refined ones stand."""
    spans = [speakers.Span(0.0, 2.0, 0), speakers.Span(2.0, 2.6, 1)]
    merged = [speakers.Span(0.0, 2.6, 0)]
    assert speakers.kept_count(spans, merged, SpeakerCount(exact=2, low=2, high=2)) == spans
    assert speakers.kept_count(spans, merged, SpeakerCount(low=2)) == spans
    assert speakers.kept_count(spans, merged, SpeakerCount()) == merged
    assert speakers.kept_count(spans, spans[::-1], SpeakerCount(exact=2, low=2, high=2)) == spans[::-1]
