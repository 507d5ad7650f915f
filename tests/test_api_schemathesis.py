"""Property-based fuzzing of every route in /openapi.json: no input may cause a 5xx."""

import re
import subprocess
import sys
from pathlib import Path

from .api_fixtures import caller


def test_no_server_errors_for_generated_requests(api_url, tenants, tmp_path):
    # An org admin reaches the most routes; the platform-admin routes answer 403 for it,
    # which is fine: the check is only "not a server error".
    admin = caller(api_url, tenants.a_admin.org, "fuzzer", "admin")
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{api_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "20261122",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "-H",
            f"Authorization: Bearer {admin.token}",
            # A thread's stream lasts until its client leaves: every request would wait out
            # the timeout. tests/test_api_thread_stream.py checks its bad inputs instead.
            "--exclude-path",
            "/threads/{thread_id}/stream",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested and int(tested.group(1)) >= 20, result.stdout[-3000:]
