"""Resumable uploads (API.md §4, seed 000): create, PUT pieces with Content-Range, complete, expire.

A piece is written at the received offset and counted only once it is whole and on disk: a piece cut off
half-way is truncated away, so the client resumes from `received_bytes`, which survives restarts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from speechsvc.access.auth import Identity
from speechsvc.audio import isolate
from speechsvc.audio.media import is_accepted_media_type
from speechsvc.config import Config
from speechsvc.errors import (
    AuthenticationError,
    Conflict,
    InvalidRequest,
    KeyUploadsFull,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from speechsvc.operations.disk import DiskCheck, DiskGuard
from speechsvc.service.spool import write_capped
from speechsvc.store import Store, Upload, UploadState

CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
MAX_FILE_NAME = 255


@dataclass(frozen=True)
class NewUpload:
    upload: Upload
    token: str  # the capability in upload_url; only its hash is stored


class UploadNotFound(NotFound):
    """No upload with this id (or it has expired)."""

    code = "upload_not_found"


class OffsetMismatch(Conflict):
    """The piece does not continue at the received offset; resume from received_bytes."""

    code = "offset_mismatch"


class UploadIncomplete(Conflict):
    """Not every byte has been received yet."""

    code = "upload_incomplete"


class UploadBusy(Conflict):
    """A piece of this upload is being received; retry when it is done."""

    code = "upload_busy"


class UploadNotCompleted(Conflict):
    """The upload is not completed: POST /v1/audio/uploads/{id}/complete first."""

    code = "upload_not_completed"


class Uploads:
    def __init__(self, config: Config, store: Store, disk: DiskGuard | None = None) -> None:
        self.config = config
        self.store = store
        self.disk = disk
        # One lock per upload: a PUT holds it while it writes, `complete` while it hashes and probes, so
        # the sha256 recorded is that of the bytes stored, never of a file changing underneath.
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        if lock.locked():
            raise UploadBusy(param="upload_id")
        return lock

    async def create(self, file_name: str, mime_type: str, size_bytes: int, owner: Identity) -> NewUpload:
        if not file_name or len(file_name) > MAX_FILE_NAME:
            raise InvalidRequest("file_name must be 1 to 255 characters", param="file_name")
        if not is_accepted_media_type(mime_type):
            raise UnsupportedMediaType(
                f"mime_type {mime_type!r} is not an accepted audio type", param="mime_type"
            )
        if size_bytes < 1:
            raise InvalidRequest("size_bytes must be a positive integer", param="size_bytes")
        if size_bytes > self.config.max_upload_bytes:
            raise PayloadTooLarge(
                f"size_bytes is over the {self.config.max_upload_bytes} bytes accepted", param="size_bytes"
            )
        now = time.time()
        cap = self.config.max_upload_bytes_per_key
        if cap > 0 and await self.store.upload_pending_bytes(owner.key_id, now) + size_bytes > cap:
            raise KeyUploadsFull(
                f"this key's unfinished uploads would hold more than {cap} bytes; complete or delete some",
                param="size_bytes",
            )
        upload_id = "upl_" + uuid.uuid4().hex
        token = secrets.token_urlsafe(24)
        upload = Upload(
            id=upload_id,
            file_name=file_name,
            mime_type=mime_type.lower(),
            size_bytes=size_bytes,
            received_bytes=0,
            state=UploadState.PENDING,
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
            sha256=None,
            created_at=now,
            expires_at=now + self.config.upload_expiry_h * 3600,
            completed_at=None,
            owner=owner.key_id,
        )
        await self.store.upload_create(upload)
        return NewUpload(upload, token)

    async def get(self, upload_id: str) -> Upload:
        upload = await self.store.upload_get(upload_id)
        if upload is None:
            raise UploadNotFound(param="upload_id")
        return upload

    async def owned(self, identity: Identity, upload_id: str) -> Upload:
        """The upload if `identity` may see it; another key's upload is 404, like a missing one."""
        upload = await self.store.upload_get(upload_id)
        if upload is None or not identity.owns(upload.owner):
            raise UploadNotFound(param="upload_id")
        return upload

    async def _live(self, upload_id: str) -> Upload:
        upload = await self.get(upload_id)
        if upload.state == UploadState.EXPIRED or upload.expires_at < time.time():
            raise UploadNotFound("the upload has expired", param="upload_id")
        return upload

    async def put_piece(
        self,
        upload_id: str,
        token: str,
        content_range: str | None,
        content_length: int | None,
        body: AsyncIterable[bytes],
    ) -> Upload:
        """Write one piece (or the whole file without Content-Range) at the received offset, read from `body`
        (the request's chunks; `content_length` as declared, None when chunked)."""
        upload = await self._live(upload_id)
        if not hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), upload.token_sha256):
            raise AuthenticationError("the upload URL's token is not valid")
        async with self._lock(upload_id):
            upload = await self._live(upload_id)
            if upload.state == UploadState.COMPLETED:
                raise Conflict("the upload is already completed", param="upload_id")
            start, end = self._range(upload, content_range, content_length)
            if content_range is not None and start != upload.received_bytes:
                raise OffsetMismatch(
                    f"this piece starts at byte {start}; resume from byte {upload.received_bytes}",
                    extra={"received_bytes": upload.received_bytes},
                )
            check = DiskCheck(self.disk)
            await check.start(end - start + 1)
            whole = content_range is None
            if whole:  # a whole file replaces what came before, even if it is cut off
                await self.store.upload_reset(upload_id)
            # the piece is received into a local spool file first, then handed to the store whole: a piece
            # cut off half-way never reaches it (and on a cluster, any node may receive the next one)
            piece = self.config.spool_dir / f"{upload_id}.{uuid.uuid4().hex}.piece"
            try:
                written = await self._receive(piece, end - start + 1, body, check, whole=whole)
                if written != end - start + 1:
                    raise InvalidRequest(
                        f"the piece held {written} bytes, not the {end - start + 1} "
                        + ("the upload was created with" if whole else "its Content-Range names"),
                        extra={"received_bytes": 0 if whole else upload.received_bytes},
                    )
                await self.store.upload_write(upload_id, start, piece, whole=whole)
            finally:
                piece.unlink(missing_ok=True)
        return await self.get(upload_id)

    @staticmethod
    def _range(upload: Upload, content_range: str | None, length: int | None) -> tuple[int, int]:
        if content_range is None:  # the whole file in one PUT: exactly the declared size, never more
            if length is not None and length != upload.size_bytes:
                raise (PayloadTooLarge if length > upload.size_bytes else InvalidRequest)(
                    f"the body is {length} bytes; the upload was created with size_bytes {upload.size_bytes}",
                    param="Content-Length",
                )
            return 0, upload.size_bytes - 1
        match = CONTENT_RANGE.match(content_range.strip())
        if match is None:
            raise InvalidRequest("Content-Range must be `bytes FIRST-LAST/TOTAL`", param="Content-Range")
        start, end, total = int(match[1]), int(match[2]), match[3]
        if total != "*" and int(total) != upload.size_bytes:
            raise InvalidRequest(
                f"the upload is {upload.size_bytes} bytes, not {total}", param="Content-Range"
            )
        if end < start or end >= upload.size_bytes:
            raise InvalidRequest("Content-Range lies outside the upload", param="Content-Range")
        return start, end

    @staticmethod
    async def _receive(
        path: Path, expected: int, body: AsyncIterable[bytes], check: DiskCheck, *, whole: bool
    ) -> int:
        """Stream the body into `path`, at most `expected` bytes (413 past it, while streaming)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            return await write_capped(
                body,
                out,
                check,
                expected,
                lambda: PayloadTooLarge(
                    f"the body is longer than the {expected} bytes expected",
                    param="Content-Length" if whole else "Content-Range",
                ),
            )

    async def complete(self, upload_id: str, sha256: str | None) -> Upload:
        """Idempotent: check size (and sha256 if given), probe the audio, mark completed. Holds the upload's
        lock, so no PUT on this node can change the bytes while they are hashed (409 upload_busy while one
        runs); a PUT on another node makes the store refuse the hash (409 upload_busy)."""
        async with self._lock(upload_id):
            return await self._complete(upload_id, sha256)

    async def _complete(self, upload_id: str, sha256: str | None) -> Upload:
        upload = await self._live(upload_id)
        if upload.state == UploadState.COMPLETED:
            if sha256 and sha256.lower() != upload.sha256:
                raise InvalidRequest("sha256 does not match the uploaded bytes", param="sha256")
            return upload
        if upload.received_bytes != upload.size_bytes:
            raise UploadIncomplete(
                f"{upload.received_bytes} of {upload.size_bytes} bytes received",
                extra={"received_bytes": upload.received_bytes},
            )
        digest = await self.store.upload_sha256(upload_id)
        if sha256 and sha256.lower() != digest:
            raise InvalidRequest("sha256 does not match the uploaded bytes", param="sha256")
        async with self.store.local_upload(upload_id, self.config.spool_dir) as path:
            await asyncio.to_thread(
                isolate.probe,
                path,
                upload.mime_type,
                max_channels=self.config.max_channels,
                limits=self.config.decode_limits,
            )
        # the lock above is this process's; on a cluster a PUT on another node may have changed the bytes
        # meanwhile: the store records the hash only if they are still those that were hashed and probed
        if not await self.store.upload_complete(upload_id, digest, upload.generation):
            raise UploadBusy("the upload's bytes changed while they were checked; complete it again")
        return await self.get(upload_id)

    async def completed(self, identity: Identity, upload_id: str) -> Upload:
        """`identity`'s completed upload, for a job; 404 for another key's."""
        await self.owned(identity, upload_id)
        upload = await self._live(upload_id)
        if upload.state != UploadState.COMPLETED:
            raise UploadNotCompleted(param="upload_id")
        return upload

    async def delete(self, identity: Identity, upload_id: str) -> None:
        """Delete `identity`'s upload, its row and bytes (a job made from it keeps its own copy); 409
        upload_busy while this node receives a piece of it."""
        await self.owned(identity, upload_id)
        async with self._lock(upload_id):
            if not await self.store.upload_delete(upload_id):
                raise UploadNotFound(param="upload_id")
        self._locks.pop(upload_id, None)

    async def expire(self) -> list[Upload]:
        """Mark expired uploads and free their storage."""
        expired = await self.store.upload_expire_before(time.time())
        for upload in expired:
            self._locks.pop(upload.id, None)
        return expired


def upload_view(upload: Upload, token: str | None = None) -> dict[str, object]:
    view: dict[str, object] = {
        "id": upload.id,
        "object": "upload",
        "file_name": upload.file_name,
        "mime_type": upload.mime_type,
        "size_bytes": upload.size_bytes,
        "received_bytes": upload.received_bytes,
        "status": upload.state.value,
        "state": upload.state.value,
        "sha256": upload.sha256,
        "created_at": int(upload.created_at),
        "expires_at": int(upload.expires_at),
    }
    if token is not None:
        view["upload_url"] = f"/v1/audio/uploads/{upload.id}/content?token={token}"
    return view
