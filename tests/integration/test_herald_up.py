"""Integration: `herald up` brings the whole local system up, and Ctrl-C takes it down.

Run as a newcomer would: in an empty folder, with no API key (so the API runs keyless on
loopback), no Redis at the configured URL (so `herald up` starts its private redis-server), no
vendor configured but 5C (so the sandbox stands in for the others; 5C's settings, written by hand,
name the sandbox too), then `herald send sms` and `herald status` from a second process in the
same folder.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import HERALD, free_port, wait_until

pytestmark = pytest.mark.integration


def test_herald_up_runs_everything_and_a_sent_sms_is_delivered(
    tmp_path: Path, redis_url: str
) -> None:
    ports = {name: free_port() for name in ("api", "sandbox", "flower", "redis")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "SANDBOX_"))}
    env |= {
        "HERALD_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "HERALD_API_PORT": str(ports["api"]),
        "HERALD_SANDBOX_PORT": str(ports["sandbox"]),
        "HERALD_FLOWER_PORT": str(ports["flower"]),
        "HERALD_WORKER_CONCURRENCY": "2",
        "HERALD_FIVEC_BASE": f"http://127.0.0.1:{ports['sandbox']}",
        "HERALD_FIVEC_APIKEY": "sandbox-apikey",
        "HERALD_FIVEC_USERNAME": "sandbox-username",
        "HERALD_FIVEC_PASSWORD": "sandbox-password",
        "PYTHONUNBUFFERED": "1",
    }
    herald = [HERALD]
    output = tmp_path / "up.out"
    with output.open("w") as out:
        up = subprocess.Popen(
            [*herald, "up"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: "ready" in printed(output) or up.poll() is not None,
            timeout_s=60,
            what="herald up to be ready",
        )
        assert up.poll() is None, printed(output)
        assert f"http://127.0.0.1:{ports['api']}" in printed(output)
        assert "private" in printed(output)
        for product in ("veesing:sms", "veesing:mms", "veesing:voice", "chuangrui:sms"):
            assert re.search(rf"^vendor +{product} +sandbox ", printed(output), re.M), product
        assert re.search(r"^vendor +fivec:mms +real ", printed(output), re.M)
        kept_token = tmp_path / ".herald" / "callback-token"
        token = kept_token.read_text().strip()
        assert stat.S_IMODE(kept_token.stat().st_mode) == 0o600
        assert f"/callbacks/veesing/sms/{token[:4]}****" in printed(output)
        assert token not in printed(output)

        sent = subprocess.run(
            [*herald, "send", "sms", "--to", "13800138000", "--content", "【Herald】您好"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stderr
        job_id = sent.stdout.strip()

        def delivered() -> bool:
            shown = subprocess.run(
                [*herald, "status", job_id, "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            return bool(json.loads(shown.stdout)["recipients"][0]["status"] == "delivered")

        wait_until(delivered, timeout_s=15, what="the recipient to be delivered")
        read = subprocess.run(
            [*herald, "balance", "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        balances = json.loads(read.stdout)
        assert set(balances) == {
            "veesing:sms",
            "veesing:mms",
            "veesing:voice",
            "chuangrui:sms",
            "fivec:mms",
        }
        assert all(b["fresh"] and b["balance"] for b in balances.values()), balances
        # Flower asks for the password herald up made, printed it, and kept in .herald/
        kept = (tmp_path / ".herald" / "flower-auth").read_text().strip()
        user, _, password = kept.partition(":")
        assert f"(user {user}, password {password})" in printed(output)
        wait_until(
            lambda: flower_answers(ports["flower"], (user, password)), timeout_s=30, what="Flower"
        )
        assert httpx.get(f"http://127.0.0.1:{ports['flower']}/", timeout=5).status_code == 401
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, printed(output)
    assert not (tmp_path / ".herald" / "up.env").exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{ports['api']}/healthz", timeout=1)


def printed(output: Path) -> str:
    return output.read_text()


def flower_answers(port: int, auth: tuple[str, str]) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", auth=auth, timeout=2).status_code == 200
    except httpx.HTTPError:
        time.sleep(0.5)
        return False
