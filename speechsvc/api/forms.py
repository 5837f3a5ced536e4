"""multipart/form-data for the OpenAI-style dialects: the `file` part is streamed to a spool file with
the byte cap; every other part is a small text field."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, web

from speechsvc.api.body import CHUNK_BYTES
from speechsvc.audio.media import is_accepted_media_type
from speechsvc.errors import InvalidRequest, MissingBody, PayloadTooLarge, UnsupportedMediaType
from speechsvc.operations.disk import DiskCheck, DiskGuard
from speechsvc.service.spool import synced, write_capped

INDEXED = re.compile(r"\[[0-9]{1,3}\]$")
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(
        default_factory=dict
    )  # repeated fields, e.g. timestamp_granularities[]
    repeated: dict[str, list[str]] = field(default_factory=dict)  # every value of a plain field, e.g. redact
    file_bytes: int = 0
    file_name: str = ""
    media_type: str = "application/octet-stream"


def _media_type(part: BodyPartReader) -> str:
    declared = (part.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and is_accepted_media_type(declared):
        return declared
    guessed = mimetypes.guess_type(part.filename or "")[0]
    if guessed and is_accepted_media_type(guessed):
        return guessed
    if declared and not is_accepted_media_type(declared):
        raise UnsupportedMediaType(
            f"the file's Content-Type {declared!r} is not an accepted audio type", param="file"
        )
    return "application/octet-stream"


async def read_form(request: web.Request, spool: Path, max_bytes: int, disk: DiskGuard | None = None) -> Form:
    """Read a multipart form; its `file` part goes to `spool`. 400 if there is no file, 507 past the
    disk budget."""
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest("send multipart/form-data with a `file` part", param="file")
    form = Form()
    reader = await request.multipart()
    count = 0
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidRequest("nested multipart is not accepted")
            count += 1
            if count > MAX_FIELDS:
                raise InvalidRequest("too many form fields")
            if part.name == "file":
                form.media_type = _media_type(part)
                form.file_name = part.filename or "audio"
                form.file_bytes = await _spool_part(part, spool, max_bytes, DiskCheck(disk), request)
                continue
            value = (await part.read(decode=True))[: MAX_FIELD_BYTES + 1]
            if len(value) > MAX_FIELD_BYTES:
                raise InvalidRequest(f"form field {part.name!r} is larger than 64 KiB", param=part.name)
            name = INDEXED.sub("[]", part.name or "")  # seed 001 sends timestamp_granularities[0], [1]…
            text = value.decode("utf-8", "replace")
            if name.endswith("[]"):
                form.lists.setdefault(name, []).append(text)
            else:
                form.fields[name] = text
                form.repeated.setdefault(name, []).append(text)
    except BaseException:
        spool.unlink(missing_ok=True)
        raise
    if form.file_bytes == 0:
        spool.unlink(missing_ok=True)
        raise MissingBody("the form has no `file` part, or it is empty", param="file")
    return form


async def _spool_part(
    part: BodyPartReader, spool: Path, max_bytes: int, check: DiskCheck, request: web.Request
) -> int:
    await check.start(request.content_length)
    spool.parent.mkdir(parents=True, exist_ok=True)
    with open(spool, "wb") as out:
        size = await write_capped(
            _chunks(part),
            out,
            check,
            max_bytes,
            lambda: PayloadTooLarge(f"the file is larger than the {max_bytes} bytes accepted", param="file"),
        )
        await synced(out)
    return size


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK_BYTES):
        yield chunk
