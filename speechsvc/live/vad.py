"""Silero VAD (the model faster-whisper ships) on a stream: one speech probability per 32 ms frame, with the
model's state and context carried from one chunk to the next, as faster-whisper's whole-file pass does."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FRAME = 512  # samples per VAD frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees before each frame


class StreamingVad:
    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session: Any = get_vad_model().session  # onnxruntime: run() is safe from several threads
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._rest = np.zeros(0, dtype=np.float32)

    def push(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The probabilities of the whole frames completed by `samples` (the rest waits for the next)."""
        audio = np.concatenate([self._rest, samples]) if len(self._rest) else samples
        count = len(audio) // FRAME
        self._rest = audio[count * FRAME :]
        if not count:
            return np.zeros(0, dtype=np.float32)
        frames = audio[: count * FRAME].reshape(count, FRAME)
        contexts = np.vstack([self._context[None], frames[:-1, -CONTEXT:]])
        self._context = frames[-1, -CONTEXT:].copy()
        batch = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1), dtype=np.float32)
        out, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)
