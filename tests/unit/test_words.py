"""Zero-length words (start == end) never reach a result (issue 13, item 9)."""

import itertools

import pytest

from speechsvc.asr.engine import MIN_WORD_S, Word, with_duration


def w(start: float, end: float, text: str, confidence: float = 0.9) -> Word:
    return Word(start, end, text, confidence)


def check(words: tuple[Word, ...]) -> None:
    for word in words:
        assert word.end - word.start >= MIN_WORD_S - 1e-9, word
    for before, after in itertools.pairwise(words):
        assert before.end <= after.start + 1e-9, (before, after)


def test_a_zero_length_word_takes_a_step_from_the_gap_after_it() -> None:
    words = with_duration([w(0.0, 0.4, " five"), w(0.4, 0.4, "%"), w(0.6, 0.9, " off")], 1.0)
    check(words)
    assert [x.word for x in words] == [" five", "%", " off"]
    assert (words[1].start, words[1].end) == (0.4, 0.42)


def test_without_a_gap_after_it_it_takes_one_before() -> None:
    words = with_duration([w(0.0, 0.3, " a"), w(0.5, 0.5, " b"), w(0.5, 0.9, " c")], 1.0)
    check(words)
    assert (words[1].start, words[1].end) == (0.48, 0.5)


def test_squeezed_between_touching_words_it_takes_a_step_from_a_neighbour() -> None:
    words = with_duration([w(0.0, 0.5, " 5", 0.8), w(0.5, 0.5, "%", 0.6), w(0.5, 0.9, " off")], 1.0)
    check(words)
    assert [(x.word, x.start, x.end) for x in words] == [
        (" 5", 0.0, 0.5),
        ("%", 0.5, 0.52),
        (" off", 0.52, 0.9),
    ]
    words = with_duration([w(0.0, 0.5, " 5"), w(0.5, 0.5, "%"), w(0.5, 0.51, "!")], 0.51)
    check(words)
    assert [(x.word, x.start, x.end) for x in words] == [(" 5", 0.0, 0.48), ("%!", 0.48, 0.51)]  # segment end


def test_between_words_too_short_to_spare_a_step_it_is_merged() -> None:
    words = with_duration([w(0.0, 0.03, " 5", 0.8), w(0.03, 0.03, "%", 0.6), w(0.03, 0.06, " x")], 0.06)
    check(words)
    assert [x.word for x in words] == [" 5%", " x"]
    assert words[0].confidence == 0.6


@pytest.mark.parametrize("first", [w(0.0, 0.0, " I"), w(0.3, 0.3, " I")])
def test_the_first_and_last_words(first: Word) -> None:
    check(with_duration([first, w(first.start, 0.8, " am"), w(1.2, 1.2, ".")], 1.2))
