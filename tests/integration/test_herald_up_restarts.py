"""Integration: under `herald up`, a part that dies is started again and the system goes on.

Run as in tests/integration/test_herald_up.py: an empty folder, a private redis-server, the
sandbox for every vendor. The worker is killed with SIGKILL (its whole process group, pool
included); `herald up` says so, starts it again, and a job sent afterwards is delivered. Ctrl-C
still stops everything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import HERALD, free_port, wait_until

pytestmark = pytest.mark.integration


def children_of(pid: int) -> list[tuple[int, str]]:
    """The direct children of a process and their command lines (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append((int(entry.name), cmdline))
    return found


def worker_pid(up_pid: int) -> int | None:
    pids = [pid for pid, cmd in children_of(up_pid) if "celery" in cmd and "--concurrency" in cmd]
    return pids[0] if pids else None


def test_a_killed_worker_is_started_again_and_a_new_job_is_delivered(
    tmp_path: Path, redis_url: str
) -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find the worker")
    ports = {name: free_port() for name in ("api", "sandbox", "flower", "redis")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "SANDBOX_"))}
    env |= {
        "HERALD_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "HERALD_API_PORT": str(ports["api"]),
        "HERALD_SANDBOX_PORT": str(ports["sandbox"]),
        "HERALD_FLOWER_PORT": str(ports["flower"]),
        "HERALD_WORKER_CONCURRENCY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    output = tmp_path / "up.out"
    with output.open("w") as out:
        up = subprocess.Popen(
            [HERALD, "up"], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: "ready" in output.read_text() or up.poll() is not None,
            timeout_s=60,
            what="herald up to be ready",
        )
        assert up.poll() is None, output.read_text()
        first = worker_pid(up.pid)
        assert first is not None

        os.killpg(first, signal.SIGKILL)

        wait_until(
            lambda: "worker started again (restart 1)" in output.read_text(),
            timeout_s=30,
            what="the worker to be started again",
        )
        assert f"worker stopped (exit {-signal.SIGKILL})" in output.read_text()
        assert up.poll() is None
        second = worker_pid(up.pid)
        assert second is not None and second != first

        sent = subprocess.run(
            [HERALD, "send", "sms", "--to", "13800138000", "--content", "【Herald】您好"],
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
                [HERALD, "status", job_id, "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            return bool(json.loads(shown.stdout)["recipients"][0]["status"] == "delivered")

        wait_until(delivered, timeout_s=60, what="the recipient to be delivered")
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)
    assert code == 0, output.read_text()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{ports['api']}/healthz", timeout=1)
