"""Settings refuse secrets left as placeholders, and a bad setting is named by its environment
variable without echoing its value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from tsunagu.config import Settings, settings_error

TSUNAGU = Path(sys.executable).with_name("tsunagu")


@pytest.mark.parametrize("field", ["webhook_secret", "line_channel_secret", "smtp_password"])
@pytest.mark.parametrize("value", ["changeme", "PassWord", " your-secret ", "q7x"])
def test_a_placeholder_or_short_secret_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    error = settings_error(caught.value)
    assert error.field == f"TSUNAGU_{field.upper()}"
    assert value.strip() not in error.message


def test_a_real_secret_is_taken() -> None:
    made = Settings(
        webhook_secret="k3Jx9-qPz2-Lm7w", line_channel_secret="0123456789abcdef0123456789abcdef"
    )
    assert made.webhook_secret == "k3Jx9-qPz2-Lm7w"


def test_the_cli_names_the_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(TSUNAGU), "--data-dir", str(tmp_path), "status"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "TSUNAGU_WEBHOOK_SECRET": "changeme", "NO_COLOR": "1",
             "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "TSUNAGU_WEBHOOK_SECRET" in done.stderr and "placeholder" in done.stderr
    assert "Traceback" not in done.stderr and "changeme" not in done.stderr
