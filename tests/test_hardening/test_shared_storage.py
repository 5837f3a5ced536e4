"""Storage bounds that hold on a cluster (issue 25, finding 3): --max-disk-bytes counts the upload and
audio bytes in the shared database, written by any node, and one key's unfinished uploads may declare
at most --max-upload-bytes-per-key. Against SQLite and PostgreSQL."""

import os
from pathlib import Path
from typing import Any

import pytest

from tests.test_hardening.test_rejections import expect_error

PIECE = 100_000


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def create(client: Any, size: int = PIECE) -> Any:
    return await client.post(
        "/v1/audio/uploads", json={"file_name": "a.wav", "mime_type": "audio/wav", "size_bytes": size}
    )


async def test_the_disk_budget_counts_the_shared_store(make_client: Any, database: str) -> None:
    client = await make_client(database=database, max_disk_bytes=int(PIECE * 2.5))
    answers = []
    for _ in range(3):
        upload = await (await create(client)).json()
        path = upload["upload_url"].replace(str(client.make_url("")), "")
        answers.append(await client.put(path, data=os.urandom(PIECE)))
    assert [answer.status for answer in answers[:2]] == [200, 200]
    await expect_error(answers[2], 507, "insufficient_storage")


async def test_one_key_may_hold_only_its_share_of_unfinished_uploads(make_client: Any, database: str) -> None:
    client = await make_client(database=database, max_upload_bytes_per_key=int(PIECE * 2.5))
    assert (await create(client)).status == 201
    assert (await create(client)).status == 201
    refused = await expect_error(await create(client), 429, "key_uploads_full", param="size_bytes")
    assert "complete or delete" in refused["error"]["message"]
