"""How long an upload's bytes live (issue 25, finding 5): a retain=false job made from an upload takes
the upload with it, an upload can be deleted, and expired upload rows are deleted a day after expiry.
Against SQLite and PostgreSQL."""

from typing import Any

from speechsvc.api.keys import STORE
from tests.conftest import corpus
from tests.integration.test_job_dialects import put, upload, wait_status
from tests.test_hardening.test_rejections import expect_error
from tests.test_hardening.test_shared_storage import database  # noqa: F401 - the backend fixture

STEREO = corpus("stereo_diarization.wav").read_bytes()


async def completed_upload(client: Any) -> dict[str, Any]:
    created = await upload(client, STEREO, "audio/wav")
    assert (await put(client, created, 0, STEREO, len(STEREO))).status == 200
    assert (await client.post(f"/v1/audio/uploads/{created['id']}/complete")).status == 200
    return created


async def test_a_job_without_retention_takes_its_upload_along(make_client: Any, database: str) -> None:  # noqa: F811
    client = await make_client(database=database)
    created = await completed_upload(client)
    job = await (
        await client.post(
            "/v1/audio/jobs", json={"upload_id": created["id"], "retain": False, "format": "txt"}
        )
    ).json()
    await expect_error(await client.get(f"/v1/audio/uploads/{created['id']}"), 404, "upload_not_found")
    assert await client.app[STORE].stored_bytes() <= len(STEREO)  # the job's copy at most
    finished = await wait_status(client, f"/v1/audio/jobs/{job['id']}", {"completed"})
    assert "word0." in finished["result"]  # the job had its own copy


async def test_an_upload_can_be_deleted(make_client: Any, database: str) -> None:  # noqa: F811
    client = await make_client(database=database)
    created = await completed_upload(client)
    deleted = await client.delete(f"/v1/audio/uploads/{created['id']}")
    assert deleted.status == 200 and (await deleted.json())["deleted"] is True
    await expect_error(await client.get(f"/v1/audio/uploads/{created['id']}"), 404, "upload_not_found")
    await expect_error(await client.delete(f"/v1/audio/uploads/{created['id']}"), 404, "upload_not_found")
    await expect_error(await put(client, created, 0, STEREO, len(STEREO)), 404, "upload_not_found")
