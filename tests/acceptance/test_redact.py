"""Never stored unredacted (issue 22): a real server and the real model transcribe a generated call in
which the customer reads a card number, its expiry and code; with redact=pci the value appears nowhere:
not in the result, the callback, the webhook, the database (SQLite file, or every PostgreSQL table), the
data dir (spool, audio) nor the server's log. The redacted copy of the audio is served and goes with the
job."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.server import Server, http
from tests.receiver import CallbackReceiver
from tests.redact_calls import CARD, write_call

pytestmark = pytest.mark.model
# The card as digits (whole, in its groups) and as said, in any case and spacing.
SECRETS = [re.compile(rf"(?<![\w.]){CARD[i:i + 4]}(?!\w)") for i in range(0, 16, 4)] + [
    re.compile(CARD), re.compile(r"five[\s,.-]+three[\s,.-]+nine", re.I), re.compile(r"six[\s,.-]+four[\s,.-]+six", re.I),
]  # fmt: skip


def leaks(text: str) -> list[str]:
    return [pattern.pattern for pattern in SECRETS if pattern.search(text)]


def files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    yield None if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def postgres_text(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return "\n".join(
            str(row[0])
            for table in tables
            for row in conn.execute(f"SELECT t::text FROM {table} t")  # type: ignore[arg-type]
        )


def test_card_number_stored_nowhere(tmp_path: Path, database: str | None) -> None:
    call = write_call("card", tmp_path / "call.wav")
    args = ("--max-duration-s", "120", *(("--database", database) if database else ()))
    server = Server(tmp_path / "data", *args).start()
    try:
        with CallbackReceiver() as receiver:
            answer = server.submit(call, redact="pci", redact_audio="beep", channel_labels="agent,customer",
                                   callback=receiver.url, format="json", crosstalk="off")  # fmt: skip
            assert answer.status == 202, answer.body
            request_id = json.loads(answer.body)["request_id"]
            fields = {"redact": "pci", "callback_url": receiver.url, "channel_labels": "agent,customer"}
            job = http("POST", f"{server.url}/v1/transcription-jobs", *_form(call, fields))
            assert job.status == 202, job.body
            server.wait_status(request_id, {"Completed"}, timeout_s=300)
            receivers = receiver.wait_for(2, timeout_s=300)
        result = json.loads(server.poll(request_id, format="json").body)
        assert "credit_card" in [r["type"] for r in result["redactions"]]
        assert "[CREDIT_CARD]" in result["text"]
        audio = http("GET", f"{server.url}/v1/transcribe/{request_id}/audio?format=flac")
        assert audio.status == 200 and audio.headers["content-type"] == "audio/flac"
        everything = {
            "result": json.dumps(result),
            "callbacks": "\n".join(r.body.decode() for r in receivers),
            "data dir": files_text(tmp_path / "data"),
            "log": server.log.read_text(errors="replace"),
            "database": postgres_text(database) if database else "",
        }
        assert {where: leaks(text) for where, text in everything.items() if leaks(text)} == {}
        assert http("DELETE", f"{server.url}/v1/transcribe/{request_id}").status == 204
        assert http("GET", f"{server.url}/v1/transcribe/{request_id}/audio").status == 404
        if database is None:
            assert not list((tmp_path / "data").rglob("*.redacted"))
    finally:
        server.stop()


def _form(path: Path, fields: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    boundary = "redact-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="call.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
