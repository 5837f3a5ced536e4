"""A short clip in a short encoder window (speechsvc.asr.short_window): the window's length, the features
cut to it, and the text bounded by it."""

from __future__ import annotations

from typing import Any

import numpy as np

from speechsvc.asr.short_window import FULL_WINDOW_FRAMES, TOKENS_PER_S, ShortWindow, window_frames


def test_the_window_is_the_clip_and_a_margin_in_steps_up_to_30_s() -> None:
    assert window_frames(4.0) == 1000  # 4 s + 5 s -> one step of 10 s
    assert window_frames(5.5) == 2000
    assert window_frames(4.0, margin_s=2.0, step_s=5.0) == 1000  # 6 s -> two steps of 5 s
    assert window_frames(2.5, margin_s=2.0, step_s=5.0) == 500
    assert window_frames(40.0) == FULL_WINDOW_FRAMES


class Recorder:
    """What ShortWindow passes on to the model."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.is_multilingual = False

    def encode(self, features: Any, to_cpu: bool = False) -> Any:
        self.calls.append(("encode", np.array(features).shape, {}))
        return "encoded"

    def generate(self, encoder_output: Any, prompts: list[list[int]], **kwargs: Any) -> list[Any]:
        self.calls.append(("generate", encoder_output, kwargs))
        return []


def test_features_are_cut_to_the_window_and_the_text_bounded_by_it() -> None:
    model = Recorder()
    short = ShortWindow(model, 500)
    assert short.is_multilingual is False  # everything else is the model's
    short.encode(np.zeros((1, 80, FULL_WINDOW_FRAMES), np.float32))
    short.generate("encoded", [[1, 2, 3]], max_length=448, beam_size=1)
    short.generate("encoded", [[1, 2, 3]], max_length=10)
    (_, shape, _), (_, _, capped), (_, _, kept) = model.calls
    assert shape == (1, 80, 500)
    assert capped == {"max_length": 3 + 5 * TOKENS_PER_S, "beam_size": 1}  # 5 s of window
    assert kept == {"max_length": 10}  # a lower bound the library asked for stays
