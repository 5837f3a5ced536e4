"""Audio fetched from a URL (Deepgram's `{"url": …}` body): under the address policy of callbacks, with
the upload byte cap and a time limit, streamed into the spool like a request body.

Loopback and private addresses are refused unless --fetch-allow-private: a fetch made on a caller's
behalf reaches into the server's own network, where a callback only sends a result out. Redirects are
followed by hand, each hop's host checked as it will be connected to (a literal address never reaches the
resolver, whose check covers names, DNS rebinding included)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from yarl import URL

from speechsvc.audio.media import is_accepted_media_type
from speechsvc.delivery.address_policy import MAX_URL_CHARS, AddressRefused, check_host, connect_host
from speechsvc.errors import InvalidCallbackUrl, InvalidMediaUrl, MediaFetchFailed
from speechsvc.operations.disk import DiskGuard
from speechsvc.service.spool import Spooled, spool_chunks

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 256 * 1024
FALLBACK_MEDIA_TYPE = "application/octet-stream"  # the decoder reads the container from its magic bytes


class RemoteMedia:
    """Fetches a URL's bytes into a spool file."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        allow_private: bool,
        timeout_s: float,
        max_bytes: int,
        disk: DiskGuard | None = None,
    ) -> None:
        self.session = session
        self.deny_private = not allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.disk = disk

    def check(self, url: str) -> None:
        """400 invalid_url for a URL the policy refuses (scheme, host, literal addresses)."""
        if len(url) > MAX_URL_CHARS:
            raise InvalidMediaUrl(f"the url is longer than {MAX_URL_CHARS} characters", param="url")
        try:
            check_host(connect_host(url), deny_private=self.deny_private)
        except (AddressRefused, InvalidCallbackUrl) as exc:
            raise InvalidMediaUrl(str(exc).replace("callback", "url"), param="url") from None

    async def fetch(self, url: str, path: Path) -> tuple[Spooled, str]:
        """The bytes at `url` in `path`, and their media type (the answer's, if it is an accepted one)."""
        try:
            return await asyncio.wait_for(self._follow(url, path), self.timeout_s)
        except (AddressRefused, InvalidCallbackUrl) as exc:
            raise InvalidMediaUrl(str(exc).replace("callback", "url"), param="url") from None
        except asyncio.TimeoutError:
            message = f"the url did not deliver its file in {self.timeout_s:g} s"
            raise MediaFetchFailed(message, param="url") from None
        except aiohttp.ClientError as exc:
            if isinstance(exc.__cause__, AddressRefused):
                raise InvalidMediaUrl(str(exc.__cause__).replace("callback", "url"), param="url") from None
            message = f"the url could not be fetched: {type(exc).__name__}: {exc}"[:300]
            raise MediaFetchFailed(message, param="url") from None

    async def _follow(self, url: str, path: Path) -> tuple[Spooled, str]:
        for _ in range(MAX_REDIRECTS + 1):
            self.check(url)
            async with self.session.get(url, allow_redirects=False) as response:
                if response.status in REDIRECTS and "Location" in response.headers:
                    url = str(URL(url).join(URL(response.headers["Location"])))
                    continue
                if response.status != 200:
                    raise MediaFetchFailed(f"the url answered HTTP {response.status}", param="url")
                media_type = response.content_type
                spooled = await spool_chunks(
                    response.content.iter_chunked(CHUNK_BYTES),
                    path,
                    self.max_bytes,
                    self.disk,
                    declared=response.content_length,
                    what="the file at the url",
                )
                return spooled, media_type if is_accepted_media_type(media_type) else FALLBACK_MEDIA_TYPE
        raise MediaFetchFailed(f"the url redirected more than {MAX_REDIRECTS} times", param="url")
