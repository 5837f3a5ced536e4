"""The GE2E voice encoder (Resemblyzer's model) in numpy: 40-band mel power spectrogram, three LSTM layers
of 256, a linear layer, ReLU and L2 norm; one 256-d embedding per 1.6 s window of speech.

A re-implementation of resemblyzer's VoiceEncoder forward pass and librosa's melspectrogram, so that the
speaker model needs neither torch nor librosa; tests/unit/test_voice_encoder.py holds it to embeddings that
resemblyzer itself computed (fixtures/speakers/). Each LSTM layer runs over every window at once: one big
matrix product for the inputs, then one small one per 10 ms step for the recurrence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from speechsvc.diarize.weights import Weights, load_state_dict

SAMPLE_RATE_HZ = 16000
N_FFT = 400  # 25 ms windows
HOP = 160  # 10 ms steps: one mel frame per 10 ms
N_MELS = 40
WINDOW_FRAMES = 160  # 1.6 s: the partial utterance the model was trained on
LAYERS = 3
HIDDEN = 256
NORM_TARGET_DBFS = -30.0  # resemblyzer's audio_norm_target_dBFS (raised only, never lowered)

Floats = npt.NDArray[np.float32]


def normalize_volume(wav: Floats) -> Floats:
    """Raise quiet speech to -30 dBFS, as resemblyzer's preprocess_wav does (the mel is not logarithmic,
    so the level matters)."""
    power = float(np.mean(np.square(wav, dtype=np.float64))) if len(wav) else 0.0
    if power <= 0.0:
        return wav
    change_db = NORM_TARGET_DBFS - 10 * np.log10(power)
    return wav if change_db < 0 else (wav * np.float32(10 ** (change_db / 20))).astype(np.float32)


class VoiceEncoder:
    """GE2E speaker embeddings from 16 kHz mono float32 audio."""

    def __init__(self, weights: Weights) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        self.mel_filters = FeatureExtractor.get_mel_filters(SAMPLE_RATE_HZ, N_FFT, N_MELS).astype(np.float32)
        self.window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's
        self.layers = [
            (
                _gates_in_order(weights[f"lstm.weight_ih_l{n}"]).T.copy(),
                _gates_in_order(weights[f"lstm.weight_hh_l{n}"]).T.copy(),
                _gates_in_order(weights[f"lstm.bias_ih_l{n}"] + weights[f"lstm.bias_hh_l{n}"]),
            )
            for n in range(LAYERS)
        ]
        self.linear = (np.ascontiguousarray(weights["linear.weight"].T), weights["linear.bias"])

    @classmethod
    def from_file(cls, path: Path) -> VoiceEncoder:
        return cls(load_state_dict(path))

    def mel(self, wav: Floats) -> Floats:
        """librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=400, hop_length=160, n_mels=40).T: power
        spectrum of centred, zero-padded frames through the Slaney mel filters; (frames, 40)."""
        padded = np.pad(wav.astype(np.float32), N_FFT // 2)
        count = 1 + (len(padded) - N_FFT) // HOP
        frames = np.lib.stride_tricks.as_strided(
            padded, (count, N_FFT), (padded.strides[0] * HOP, padded.strides[0]), writeable=False
        )
        power = np.abs(np.fft.rfft(frames * self.window, axis=1)) ** 2
        mel: Floats = (power.astype(np.float32) @ self.mel_filters.T).astype(np.float32)
        return mel

    def embed(self, windows: Floats) -> Floats:
        """Embeddings of mel windows (batch, frames, 40) -> (batch, 256), each L2-normed."""
        sequence = windows.astype(np.float32)
        batch, steps, _ = sequence.shape
        hidden = np.zeros((batch, HIDDEN), np.float32)
        for number, (w_ih, w_hh, bias) in enumerate(self.layers):
            inputs = (sequence.reshape(batch * steps, -1) @ w_ih + bias).reshape(batch, steps, 4 * HIDDEN)
            hidden = np.zeros((batch, HIDDEN), np.float32)
            cell = np.zeros_like(hidden)
            gates = np.empty((batch, 4 * HIDDEN), np.float32)
            outputs = None if number == LAYERS - 1 else np.empty((batch, steps, HIDDEN), np.float32)
            for step in range(steps):
                np.matmul(hidden, w_hh, out=gates)
                gates += inputs[:, step]
                sigmoid = gates[
                    :, : 3 * HIDDEN
                ]  # input, forget and output gates: sigmoid(x) = (1 + tanh(x/2)) / 2
                sigmoid *= 0.5
                np.tanh(sigmoid, out=sigmoid)
                sigmoid += 1.0
                sigmoid *= 0.5
                candidate = np.tanh(gates[:, 3 * HIDDEN :])
                cell *= gates[:, HIDDEN : 2 * HIDDEN]
                candidate *= gates[:, :HIDDEN]
                cell += candidate
                np.tanh(cell, out=hidden)
                hidden *= gates[:, 2 * HIDDEN : 3 * HIDDEN]
                if outputs is not None:
                    outputs[:, step] = hidden
            if outputs is not None:
                sequence = outputs
        raw = np.maximum(hidden @ self.linear[0] + self.linear[1], 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        embeddings: Floats = (raw / np.maximum(norms, 1e-9)).astype(np.float32)
        return embeddings

    def embed_frames(self, mel: Floats, starts: list[int], batch_size: int = 256) -> Floats:
        """One embedding per window of WINDOW_FRAMES mel frames starting at each of `starts` (a window that
        runs past the end is zero-padded, as resemblyzer pads the waveform). On one BLAS thread: the LSTM's
        matrices are small, and a second thread cost twice the CPU for the same wall time (44 s of speech,
        alternated, 2 cores: 0.42-0.60 s wall and 0.45-0.63 CPU s on one, 0.54-0.99 s and 0.74-1.06 on two),
        CPU the decoder of the job beside it needs."""
        from threadpoolctl import threadpool_limits  # the `diarize` extra, as scipy

        with threadpool_limits(limits=1, user_api="blas"):
            return self._embed_frames(mel, starts, batch_size)

    def _embed_frames(self, mel: Floats, starts: list[int], batch_size: int) -> Floats:
        if len(mel) < max(starts, default=0) + WINDOW_FRAMES:
            mel = np.concatenate(
                [mel, np.zeros((max(starts) + WINDOW_FRAMES - len(mel), N_MELS), np.float32)]
            )
        out = [
            self.embed(np.stack([mel[s : s + WINDOW_FRAMES] for s in starts[i : i + batch_size]]))
            for i in range(0, len(starts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, 256), np.float32)


def _gates_in_order(weights: Floats) -> Floats:
    """torch's LSTM gate order (input, forget, cell candidate, output) as (input, forget, output, candidate), so
    that one slice of three gates goes through the sigmoid and one through tanh."""
    i, f, g, o = np.split(weights, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0).astype(np.float32)
