"""Which media types the API accepts, and which FFmpeg demuxer reads a file.

The demuxer is chosen from the file's own magic bytes, never by FFmpeg's free probing: probing can pick
playlist or concat demuxers that open other files (an HLS playlist hidden in another container reads
local files), so only the demuxers below are ever used.
"""

from __future__ import annotations

ACCEPTED_MEDIA_TYPES = frozenset(
    {
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/m4a",
        "audio/x-m4a",
        "audio/aac",
        "audio/ogg",
        "audio/opus",
        "audio/flac",
        "audio/x-flac",
        "audio/webm",
        "audio/basic",
        "audio/amr",
        "video/mp4",
        "video/webm",
        "video/x-matroska",
        "video/quicktime",
        "application/octet-stream",
    }
)

# Demuxer names as FFmpeg knows them.
WAV, W64, MP3, AAC, FLAC, OGG, MP4, MATROSKA, AU, AMR, MULAW = (
    "wav",
    "w64",
    "mp3",
    "aac",
    "flac",
    "ogg",
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "au",
    "amr",
    "mulaw",
)
ALLOWED_DEMUXERS = frozenset({WAV, W64, MP3, AAC, FLAC, OGG, MP4, MATROSKA, AU, AMR, MULAW})
SNIFF_BYTES = 64
MULAW_RAW_RATE_HZ = 8000


def is_accepted_media_type(media_type: str) -> bool:
    return media_type.lower() in ACCEPTED_MEDIA_TYPES


def sniff_demuxer(head: bytes, media_type: str) -> str | None:
    """The FFmpeg demuxer for a file that starts with `head`, or None if it is no container we read."""
    if (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:4] == b"RF64":
        return WAV
    if head[:16] == b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xd2\x00\x00":
        return W64
    if head[:4] == b"fLaC":
        return FLAC
    if head[:4] == b"OggS":
        return OGG
    if head[4:8] == b"ftyp":
        return MP4
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return MATROSKA
    if head[:4] == b".snd":
        return AU
    if head[:5] == b"#!AMR":
        return AMR
    if head[:3] == b"ID3":
        return MP3
    if media_type == "audio/basic":
        # headerless G.711 mu-law, 8 kHz mono, as telephony systems write it. Checked before MPEG
        # sync words: mu-law silence is 0xFF bytes, which look like one.
        return MULAW
    return _mpeg_sync(head)


def _mpeg_sync(head: bytes) -> str | None:
    """An MPEG audio frame header (MP3) or an ADTS header (AAC) with valid fields, else None."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 0x3
    if layer == 0:  # ADTS: layer bits 00, sampling-frequency index 0-12
        return AAC if head[1] & 0xF0 == 0xF0 and (head[2] >> 2) & 0xF < 13 else None
    bitrate_index, rate_index = head[2] >> 4, (head[2] >> 2) & 0x3
    return MP3 if bitrate_index not in (0x0, 0xF) and rate_index != 0x3 else None
