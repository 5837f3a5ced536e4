"""Segments cut and timed by their words (speechsvc.results.turns), speech left without words found
(speechsvc.asr.coverage), talk time counted from words (speechsvc.results.canonical)."""

from __future__ import annotations

from speechsvc.asr.coverage import uncovered
from speechsvc.asr.engine import ChannelTranscript, Segment, Word
from speechsvc.audio.layout import ChannelRef, SelectedChannel
from speechsvc.results.canonical import build_result, drop_words
from speechsvc.results.turns import cut_turns


def segment(
    *words: tuple[float, float, str], start: float | None = None, end: float | None = None
) -> Segment:
    found = tuple(Word(a, b, f" {w}", 0.9) for a, b, w in words)
    text = "".join(w.word for w in found)
    return Segment(found[0].start if start is None else start, found[-1].end if end is None else end, text,
                   found, tokens=(1, 2, 3))  # fmt: skip


def transcript(*segments: Segment, duration_s: float = 60.0) -> ChannelTranscript:
    return ChannelTranscript("en", 1.0, duration_s, duration_s, list(segments))


def test_a_long_pause_cuts_a_segment_and_words_time_it() -> None:
    (cut,) = cut_turns([transcript(segment((2.0, 2.5, "one"), (2.6, 3.0, "two"), (4.5, 5.0, "three"),
                                           start=0.0, end=6.0))])  # fmt: skip
    assert [(s.start, s.end, s.text) for s in cut.segments] == [(2.0, 3.0, " one two"), (4.5, 5.0, " three")]
    assert [s.tokens for s in cut.segments] == [(), ()]  # the tokens belong to the uncut segment
    (whole,) = cut_turns([transcript(segment((2.0, 2.5, "one"), (2.6, 3.0, "two"), start=0.0, end=6.0))])
    assert [(s.start, s.end, s.tokens) for s in whole.segments] == [(2.0, 3.0, (1, 2, 3))]


def test_a_short_gap_is_a_turn_only_when_the_other_channel_speaks_in_it() -> None:
    agent = transcript(segment((1.0, 1.5, "so"), (2.0, 2.4, "then")))
    quiet = transcript(segment((10.0, 10.5, "later")))
    answer = transcript(segment((1.6, 1.9, "yes")))
    assert len(cut_turns([agent, quiet])[0].segments) == 1
    cut = cut_turns([agent, answer])[0]
    assert [(s.start, s.end) for s in cut.segments] == [(1.0, 1.5), (2.0, 2.4)]


def test_edge_words_stay_inside_their_speech_region() -> None:
    # the alignment gave the first word 0.8 s of the silence before it; the VAD's region (padded 0.4 s)
    # says speech starts at 3.0
    (cut,) = cut_turns([transcript(segment((2.2, 3.3, "hello"), (3.4, 3.9, "there")))], [[(2.6, 4.3)]])
    assert (cut.segments[0].start, cut.segments[0].end) == (3.0, 3.9)
    (edge,) = cut_turns([transcript(segment((0.1, 0.5, "hi")))], [[(0.0, 0.9)]])
    assert edge.segments[0].start == 0.1  # a region at the start of the audio has no padding there


def test_speech_without_words_is_found() -> None:
    spoken = [segment((1.0, 1.5, "a"), (1.6, 2.0, "b")), segment((9.0, 9.5, "c"))]
    speech = [(0.6, 2.4), (5.0, 7.5), (8.6, 12.0)]
    assert uncovered(speech, spoken) == [(5.0, 7.5), (10.1, 12.0)]
    assert uncovered([(0.6, 2.4)], spoken) == []


def test_talk_time_and_overlap_come_from_the_words() -> None:
    labels = [SelectedChannel(ChannelRef(0, 0), "agent"), SelectedChannel(ChannelRef(0, 1), "customer")]
    # the agent's segment is padded by Whisper to 0-10 s; its words are 0.5-3 s and 8-9 s
    agent = transcript(Segment(0.0, 10.0, " a b c", (Word(0.5, 3.0, " a", 0.9), Word(8.0, 9.0, " b", 0.9))))
    customer = transcript(segment((4.0, 6.0, "yes")))
    result = build_result("x", "tiny.en", list(zip(labels, [agent, customer], strict=True)))
    assert result["stats"] == {"talk_time_s": {"agent": 3.5, "customer": 2.0}, "overlap_s": 0.0}
    words_left_out = drop_words(
        build_result("x", "tiny.en", list(zip(labels, [agent, customer], strict=True)))
    )
    assert words_left_out["stats"] == result["stats"]
    assert all(s["words"] == [] for c in words_left_out["channels"] for s in c["segments"])
