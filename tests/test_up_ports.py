"""`herald up` refuses to start on a busy port instead of saying "ready" while another process
answers (worker/up.py `check_ports_free`)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import HERALD, free_port
from worker.up import check_ports_free, port_is_free


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_listened_port_is_busy_and_an_unused_one_is_free(busy_port: int) -> None:
    assert not port_is_free("127.0.0.1", busy_port)
    assert port_is_free("127.0.0.1", free_port())


def test_the_message_names_the_port_and_its_setting(busy_port: int) -> None:
    with pytest.raises(SystemExit) as raised:
        check_ports_free({"HERALD_API_PORT": ("127.0.0.1", busy_port), "OTHER": ("127.0.0.1", 0)})
    message = str(raised.value.code)
    assert f"127.0.0.1:{busy_port} (HERALD_API_PORT)" in message
    assert "OTHER" not in message


def test_herald_up_on_a_busy_port_fails_without_saying_ready(
    busy_port: int, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HERALD_DATA_DIR": str(tmp_path / "data"),
        "HERALD_API_PORT": str(busy_port),
        "HERALD_FLOWER_PORT": str(free_port()),
        "HERALD_SANDBOX_PORT": str(free_port()),
        "HERALD_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    ran = subprocess.run(
        [HERALD, "up"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode != 0
    assert "ready" not in ran.stdout
    assert f"127.0.0.1:{busy_port} (HERALD_API_PORT)" in ran.stderr
