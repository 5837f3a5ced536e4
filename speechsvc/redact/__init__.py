"""Redaction (issue 22): card numbers, SSNs, phone numbers, e-mail addresses, IBANs, person names or every
number taken out of a result before anything stores it (speechsvc.redact.apply), and out of a copy of the
audio (speechsvc.redact.audio). This module holds what a request asks for and how the parameters read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from speechsvc.errors import InvalidRequest

# The classes a caller names (Deepgram's names) and the entity types each one redacts.
CLASSES: dict[str, frozenset[str]] = {
    "pci": frozenset({"credit_card", "card_expiry", "card_security_code"}),
    "ssn": frozenset({"ssn"}),
    "numbers": frozenset({"number"}),
    "pii": frozenset(
        {
            "credit_card",
            "card_expiry",
            "card_security_code",
            "ssn",
            "phone_number",
            "email",
            "iban",
            "person_name",  # where the `names` extra is installed (speechsvc.redact.names)
        }
    ),
}
# Entity types in order of precedence (overlapping findings become one span of the first type) and markers.
MARKERS = {
    "credit_card": "[CREDIT_CARD]",
    "card_expiry": "[CREDIT_CARD_EXPIRY]",
    "card_security_code": "[CREDIT_CARD_CVV]",
    "ssn": "[SSN]",
    "iban": "[IBAN]",
    "phone_number": "[PHONE_NUMBER]",
    "email": "[EMAIL]",
    "person_name": "[PERSON_NAME]",
    "number": "[NUMBER]",
}
MASK = "****"
SUBSTITUTIONS = ("marker", "mask")
AUDIO_MODES = ("beep", "silence")


@dataclass(frozen=True)
class Redaction:
    """What a job asks to redact: classes (sorted names from CLASSES), marker or mask, and the audio."""

    classes: tuple[str, ...]
    substitution: str = "marker"
    audio: str | None = None  # beep | silence: keep a redacted copy of the selected channels

    @property
    def entities(self) -> frozenset[str]:
        return frozenset().union(*(CLASSES[name] for name in self.classes))

    def to_json(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "substitution": self.substitution, "audio": self.audio}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Redaction | None:
        if not data:
            return None
        return cls(tuple(data["classes"]), data.get("substitution", "marker"), data.get("audio"))


def parse_redaction(values: Iterable[str], substitution: str | None, audio: str | None) -> Redaction | None:
    """`redact` (comma-separated and/or repeated), `redact_sub` and `redact_audio` as a dialect got them;
    None when nothing is to be redacted. 400 naming the parameter for a value it does not know."""
    names: set[str] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip().lower()
            if not name or name in ("false", "none"):
                continue
            if name not in CLASSES:
                raise InvalidRequest(f"redact: unknown class {name[:50]!r}; use {', '.join(CLASSES)}",
                                     param="redact")  # fmt: skip
            names.add(name)
    sub = (substitution or "marker").strip().lower()
    if sub not in SUBSTITUTIONS:
        raise InvalidRequest("redact_sub must be marker or mask", param="redact_sub")
    mode = (audio or "false").strip().lower()
    mode = {"true": "beep", "1": "beep", "yes": "beep", "on": "beep", "0": "false", "no": "false",
            "off": "false"}.get(mode, mode)  # fmt: skip
    if mode not in (*AUDIO_MODES, "false"):
        raise InvalidRequest("redact_audio must be true, false, beep or silence", param="redact_audio")
    if not names:
        if substitution or mode != "false":
            given = "redact_sub" if substitution else "redact_audio"
            raise InvalidRequest(f"{given} needs redact=<classes>", param=given)
        return None
    return Redaction(tuple(sorted(names)), sub, None if mode == "false" else mode)
