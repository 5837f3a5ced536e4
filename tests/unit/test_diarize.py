"""Clustering into speakers and putting the speakers onto a transcript, on made-up embeddings and words."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import ChannelTranscript, Segment, Word
from speechsvc.diarize.assign import label_transcript, speaker_at
from speechsvc.diarize.clustering import FAR_DISTANCE, SHORT_RATIO, SpeakerCount, _speakers_below, cluster
from speechsvc.diarize.speakers import Span


def voices(sizes: list[int], spread: float = 0.08, seed: int = 0) -> npt.NDArray[np.float32]:
    """Unit vectors around one random centre per speaker, in speaker order (192-d, signed, as CAM++'s)."""
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        centre = rng.normal(size=192)
        for _ in range(size):
            row = centre / np.linalg.norm(centre) + rng.normal(scale=spread / 16, size=192)
            rows.append(row / np.linalg.norm(row))
    return np.array(rows, dtype=np.float32)


def speakers(embeddings: npt.NDArray[np.float32], count: SpeakerCount) -> npt.NDArray[np.int64]:
    """`cluster` on embeddings that each stand for one window's step of speech (0.8 s)."""
    return cluster(embeddings, np.full(len(embeddings), 0.8), count)


def test_two_speakers_are_found_and_numbered_by_first_appearance() -> None:
    embeddings = voices([30, 20])
    order = np.r_[np.arange(30, 50), np.arange(0, 30)]  # the second voice speaks first
    labels = speakers(embeddings[order], SpeakerCount())
    assert labels.tolist() == [0] * 20 + [1] * 30


def test_one_speaker_stays_one() -> None:
    assert set(speakers(voices([60]), SpeakerCount()).tolist()) == {0}


def test_a_single_window_is_not_a_speaker_but_a_short_interjection_is() -> None:
    """One window (a cough, a "yes") joins the nearest speaker; two windows (a turn of about 2 s) can be a
    speaker of their own when the count is estimated (issue 24: short interjections)."""
    talk, blip = voices([60], seed=1), voices([2], seed=2)
    assert set(speakers(np.concatenate([talk, blip[:1]]), SpeakerCount()).tolist()) == {0}
    assert speakers(np.concatenate([talk, blip]), SpeakerCount()).tolist() == [0] * 60 + [1] * 2
    exact = speakers(np.concatenate([talk, blip[:1]]), SpeakerCount(exact=2, low=2, high=2))
    assert set(exact.tolist()) == {0, 1}


def test_four_voices_are_four_speakers() -> None:
    embeddings = np.concatenate([voices([15, 15], seed=3), voices([15, 15], seed=4)])
    assert speakers(embeddings, SpeakerCount()).tolist() == [0] * 15 + [1] * 15 + [2] * 15 + [3] * 15


def test_outlier_windows_join_a_speaker_instead_of_blocking_the_count() -> None:
    """Two voices and three stray windows, each a different mix of both voices and noise (a window across a
    turn change, a cough): still two speakers, the strays on them."""
    rng = np.random.default_rng(7)
    two = voices([25, 25], seed=6)
    strays = two[0] * rng.uniform(0.3, 0.7, size=(3, 1)) + two[25] * rng.uniform(0.3, 0.7, size=(3, 1))
    strays += rng.normal(scale=0.5 / np.sqrt(192), size=strays.shape)
    embeddings = np.concatenate(
        [two, (strays / np.linalg.norm(strays, axis=1, keepdims=True)).astype(np.float32)]
    )
    labels = speakers(embeddings, SpeakerCount())
    assert labels[:50].tolist() == [0] * 25 + [1] * 25 and set(labels[50:].tolist()) <= {0, 1}


def test_a_short_piece_of_a_short_voice_already_taken_is_not_another_speaker() -> None:
    """Clusters below the cut, one chunk each: a sure voice (20 s), a short one (4.8 s) and a 1.6 s piece
    0.29 from the short one (JFK's noisy second turn at the VAD's threshold of 0.3). Held against a voice
    heard SHORT_RATIO times as long, the piece is that voice; beside a voice heard less than that, or
    standing FAR_DISTANCE from it, it is a speaker of its own."""
    basis = np.eye(3, 192, dtype=np.float32)

    def count(near: float, short_s: float) -> int:
        piece = (1 - near) * basis[1] + np.sqrt(1 - (1 - near) ** 2) * basis[2]
        embeddings = np.stack([basis[0], basis[1], piece]).astype(np.float32)
        return _speakers_below(embeddings, np.array([20.0, short_s, 1.6]), np.arange(3))

    assert count(0.29, SHORT_RATIO * 1.6) == 2
    assert count(0.29, SHORT_RATIO * 1.6 - 0.8) == 3  # a voice heard under 3 times as long: both stand
    assert count(FAR_DISTANCE + 0.02, SHORT_RATIO * 1.6) == 3  # far enough from it: another person


def test_exact_count_and_bounds() -> None:
    embeddings = voices([20, 20, 20])
    assert len(set(speakers(embeddings, SpeakerCount()).tolist())) == 3
    assert len(set(speakers(embeddings, SpeakerCount(exact=2, low=2, high=2)).tolist())) == 2
    assert len(set(speakers(embeddings, SpeakerCount(low=1, high=2)).tolist())) == 2
    assert len(set(speakers(voices([40]), SpeakerCount(low=2, high=4)).tolist())) == 2
    assert speakers(voices([1]), SpeakerCount(exact=3, low=3, high=3)).tolist() == [0]  # one window: one


def _segment(start: float, end: float, words: list[tuple[float, float, str]]) -> Segment:
    return Segment(start, end, "".join(w for _, _, w in words), tuple(Word(s, e, w, 0.9) for s, e, w in words),
                   tokens=(1, 2, 3))  # fmt: skip


def test_segments_are_cut_where_the_speaker_changes() -> None:
    transcript = ChannelTranscript("en", 1.0, 10.0, 8.0, [
        _segment(0.0, 4.0, [(0.0, 0.5, " Hello"), (0.6, 1.0, " there."), (2.0, 2.5, " Hi,"), (2.6, 3.9, " sir.")]),
        _segment(5.0, 6.0, [(5.0, 6.0, " Bye.")]),
    ])  # fmt: skip
    spans = [Span(0.0, 1.5, 1), Span(1.5, 4.0, 0), Span(4.5, 6.0, 1)]
    labelled = label_transcript(transcript, spans, keep_words=True)
    assert [(s.start, s.end, s.text, s.speaker) for s in labelled.segments] == [
        (0.0, 1.0, " Hello there.", "spk_0"),  # spk_0 is whoever speaks first
        (2.0, 4.0, " Hi, sir.", "spk_1"),
        (5.0, 6.0, " Bye.", "spk_0"),
    ]
    assert [w.speaker for s in labelled.segments for w in s.words] == [
        "spk_0",
        "spk_0",
        "spk_1",
        "spk_1",
        "spk_0",
    ]
    assert labelled.segments[0].tokens == () and labelled.segments[2].tokens == (1, 2, 3)
    assert all(not s.words for s in label_transcript(transcript, spans, keep_words=False).segments)


def test_a_word_inside_the_others_turn_stays_with_its_turn() -> None:
    words = [
        (0.0, 0.4, " One"),
        (0.5, 0.9, " two"),
        (1.0, 1.2, " uh"),
        (1.3, 1.7, " three"),
        (1.8, 2.2, " four"),
    ]
    transcript = ChannelTranscript("en", 1.0, 3.0, 3.0, [_segment(0.0, 2.2, words)])
    spans = [Span(0.0, 1.0, 0), Span(1.0, 1.25, 1), Span(1.25, 2.2, 0)]  # a 0.25 s blip of speaker 1
    labelled = label_transcript(transcript, spans, keep_words=True)
    assert [s.speaker for s in labelled.segments] == ["spk_0"] and labelled.segments[0].tokens == (1, 2, 3)


def test_a_word_off_speech_takes_the_nearest_speaker() -> None:
    spans = [Span(0.0, 1.0, 0), Span(3.0, 4.0, 1)]
    assert speaker_at(spans, 2.6, 2.8) == 1 and speaker_at(spans, 1.1, 1.3) == 0
    assert speaker_at([], 0.0, 1.0) is None
