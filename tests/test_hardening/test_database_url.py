"""The database URL at start-up (issue 25, finding 8): whatever its form, a bad or unreachable URL is one
line on stderr that never shows the password, and exit 1."""

import pytest

from speechsvc.__main__ import _safe_url, main

SECRET = "s3cretPW"
BAD_URLS = [
    f"postgresql://user:{SECRET}@127.0.0.1:1/db",  # unreachable
    f"postgresql://:{SECRET}@127.0.0.1:1/db",  # no user name
    f"postgresql://user@127.0.0.1:1/db?password={SECRET}",  # password as a parameter
    f"postgresql://user@127.0.0.1:1/db?sslmode=disable&PASSWORD={SECRET}",
    f"postgresql://user:{SECRET}@[::1/db",  # malformed IPv6 host
    f"postgresql://user:{SECRET}%zz@127.0.0.1:1/db",  # bad percent-encoding
    f"postgresql://user:{SECRET}@127.0.0.1:notaport/db",  # port not a number
    f"postgresql://user:{SECRET}@127.0.0.1:1/db?bogus_option=1",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_database_url_is_one_line_without_the_password(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    code = main(["keys", "list", "--database", url, "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert SECRET not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("url", BAD_URLS)
def test_safe_url_masks_every_password_form(url: str) -> None:
    assert SECRET not in _safe_url(url)
