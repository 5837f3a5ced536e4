"""Who speaks each utterance of a mono live stream (diarize=true): one GE2E embedding per utterance (the
mean of its 1.6 s windows, every 0.8 s), matched online to the speakers heard so far by the cosine to
each one's centroid; a new speaker opens where none is close enough. The file jobs cluster a whole channel
at once (speechsvc.diarize); a stream cannot wait for its end, and utterances cut at pauses are mostly one
speaker's turn.

Measured on mixed mono calls of tests/diarize_calls.py (60 s, utterances cut at 300 ms pauses), share of
speech on the right speaker at a threshold of 0.7: jfk+wizard 0.976, two espeak voices m3+f4 1.00,
wizard+horizon 1.00, jfk+horizon+f2 0.923 (4 speakers found for 3), m3+jfk+wizard 0.976; two similar
espeak voices (f4+f2) were one speaker (0.567). 0.6 merged m3+f4 into one, 0.75 split JFK in two."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from speechsvc.diarize import load_encoder
from speechsvc.diarize.encoder import SAMPLE_RATE_HZ, WINDOW_FRAMES, normalize_volume

SAME_SPEAKER = 0.7  # cosine of an utterance to a speaker's centroid
MIN_NEW_SPEAKER_S = 1.0  # a shorter utterance never opens a speaker (its embedding is too noisy)
MAX_SPEAKERS = 8
WINDOW_STEP_FRAMES = 80  # 0.8 s, as the file jobs' diarization


class LiveSpeakers:
    """The speakers of one channel so far; `assign` is blocking (run it on a thread)."""

    def __init__(self) -> None:
        self._encoder = load_encoder()
        self._sums: list[npt.NDArray[np.float32]] = []  # each speaker's embeddings summed

    def assign(self, audio: npt.NDArray[np.float32]) -> int:
        """The 0-based speaker of an utterance (16 kHz mono)."""
        embedding = self._embed(audio)
        if self._sums:
            centroids = np.stack([s / np.linalg.norm(s) for s in self._sums])
            best = int(np.argmax(centroids @ embedding))
            close = float(centroids[best] @ embedding) >= SAME_SPEAKER
            if close or len(audio) < MIN_NEW_SPEAKER_S * SAMPLE_RATE_HZ or len(self._sums) >= MAX_SPEAKERS:
                self._sums[best] = self._sums[best] + embedding
                return best
        self._sums.append(embedding)
        return len(self._sums) - 1

    def _embed(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        mel = self._encoder.mel(normalize_volume(audio))
        starts = list(range(0, max(1, len(mel) - WINDOW_FRAMES + 1), WINDOW_STEP_FRAMES))
        mean = np.asarray(self._encoder.embed_frames(mel, starts).mean(axis=0), dtype=np.float32)
        return mean / np.float32(max(float(np.linalg.norm(mean)), 1e-9))
