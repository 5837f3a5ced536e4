"""save=true: the call as it arrives, 16 kHz 16-bit PCM, one WAV channel per stream channel, on disk (never
whole in memory); at the end of the stream it becomes a job like any upload."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ


class CallRecorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._wav: wave.Wave_write | None = None
        self.frames = 0

    def write(self, samples: npt.NDArray[np.float32]) -> None:
        """(channels, n) samples; the channel count is the first write's."""
        if self._wav is None:
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 (closed in close())
            self._wav.setnchannels(samples.shape[0])
            self._wav.setsampwidth(2)
            self._wav.setframerate(SAMPLE_RATE_HZ)
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
        self._wav.writeframes(pcm[: self._wav.getnchannels()].T.tobytes())
        self.frames += samples.shape[1]

    def close(self) -> int:
        """Finish the file; its size in bytes (0: nothing was recorded, and no file)."""
        if self._wav is None:
            return 0
        self._wav.close()
        self._wav = None
        return self.path.stat().st_size

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
