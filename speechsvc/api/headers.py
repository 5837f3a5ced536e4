"""Headers every answer carries for the browser: no MIME sniffing anywhere, and on an html answer (a
result page, /docs) a Content-Security-Policy and Cache-Control: no-store (a transcript is not for a
shared cache)."""

from __future__ import annotations

import base64
import hashlib

from aiohttp import web

# the result page: inline CSS only, no script, nothing fetched, never framed
HTML_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def script_csp(inline_script: str | None = None) -> str:
    """The policy of a page that runs its own scripts (/docs, /live): files from this origin, and the one
    inline script, if any, by its hash."""
    scripts = "'self'"
    if inline_script is not None:
        scripts += f" 'sha256-{base64.b64encode(hashlib.sha256(inline_script.encode()).digest()).decode()}'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


def add_security_headers(response: web.StreamResponse) -> None:
    if response.prepared:  # a streamed answer has sent its headers already
        return
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_CSP)
        response.headers.setdefault("Cache-Control", "no-store")
