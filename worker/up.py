"""`herald up`: the whole local system in one terminal, on embedded defaults.

Starts, as child processes: a private Redis (only when none answers at HERALD_REDIS_URL and a
`redis-server` binary exists), the vendor sandbox (standing in for every vendor of which the
environment sets neither an address nor an account: `vendor_choices`), the HTTP API, a Celery
worker, beat and Flower. The settings it chooses are written to `<data_dir>/up.env` so that
`herald send` and `herald status` in the same folder talk to this system; the file is removed on
exit. Flower asks for a password, made once and kept in `<data_dir>/flower-auth` unless
HERALD_FLOWER_BASIC_AUTH gives one; the vendors' callback token, likewise, in
`<data_dir>/callback-token` unless HERALD_CALLBACK_TOKEN gives one. At start it prints, for each
vendor product, `real` or `sandbox` and the callback URLs to register with the vendor (token
masked). The API starts without API keys only on loopback (worker/api/auth.py).

A part that exits is started again, as a supervisor would (a worker that stops consuming after a
Redis outage exits on purpose for that: `worker.liveness`): after 1 s, then after twice as long
each time it exits again within a minute of starting, up to a minute between tries, with a line
for each restart. Ctrl-C stops everything, newest first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import httpx

from worker.api.auth import check_can_start
from worker.errors import ConfigurationError
from worker.redis_client import redis_answers
from worker.redis_urls import is_sentinel_url
from worker.settings import Settings, get_settings, local_env_file
from worker.store import migrate
from worker.up_config import (
    CALLBACK_TOKEN_FILE,
    callback_token,
    flower_basic_auth,
    missing_vendor_settings,
    sandbox_settings,
    vendor_choices,
    vendor_lines,
)

STOP_GRACE_S = 15.0
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0
HEALTHY_RUN_S = 60.0
"""A part that ran this long before it exited is started again after the first wait."""


def restart_delay_s(quick_exits: int) -> float:
    """The wait before starting a part again, after `quick_exits` exits in a row that each came
    within `HEALTHY_RUN_S` of its start: 1 s, 2 s, 4 s, ... up to `RESTART_MAX_S`."""
    return min(RESTART_MAX_S, RESTART_FIRST_S * 2.0 ** min(quick_exits, 16))


@dataclass
class Child:
    name: str
    argv: list[str]
    extra_env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    restarts: int = 0
    quick_exits: int = 0
    restart_at: float | None = None


@dataclass
class LocalSystem:
    settings: Settings
    say: Callable[[str], None]
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.settings.data_dir / "logs"

    def start(self, name: str, argv: list[str], extra_env: Mapping[str, str] = {}) -> Child:
        log_path = self.logs / f"{name}.log"
        process = self.spawn(argv, extra_env, log_path)
        child = Child(name, argv, dict(extra_env), process, log_path, time.monotonic())
        self.children.append(child)
        return child

    def spawn(
        self, argv: list[str], extra_env: Mapping[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log_file:
            return subprocess.Popen(
                argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, **extra_env},
                start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            )

    def supervise(self, now: float) -> None:
        """Start again, when its wait is over, each part that exited."""
        for child in self.children:
            if child.restart_at is None:
                code = child.process.poll()
                if code is None:
                    continue
                ran_s = now - child.started_at
                child.quick_exits = child.quick_exits + 1 if ran_s < HEALTHY_RUN_S else 0
                wait_s = restart_delay_s(child.quick_exits)
                child.restart_at = now + wait_s
                self.say(
                    f"{child.name} stopped (exit {code}) after {ran_s:.0f} s; starting it again "
                    f"in {wait_s:.0f} s; see {child.log_path}"
                )
            elif now >= child.restart_at:
                child.process = self.spawn(child.argv, child.extra_env, child.log_path)
                child.started_at, child.restart_at = now, None
                child.restarts += 1
                self.say(f"{child.name} started again (restart {child.restarts})")

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        local_env_file().unlink(missing_ok=True)


def run_local_system(say: Callable[[str], None] = print) -> int:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    system = LocalSystem(settings, say)
    stop_requested = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        start_everything(system)
        while not stop_requested:
            system.supervise(time.monotonic())
            time.sleep(0.5)
        say("stopping ...")
        return 0
    finally:
        system.stop()


def start_everything(system: LocalSystem) -> None:
    settings = system.settings
    python = sys.executable
    sandboxed_at_start = [v for v, c in vendor_choices(os.environ).items() if c == "sandbox"]
    check_ports_free(ports_to_listen_on(settings, sandbox=bool(sandboxed_at_start)))
    ensure_redis(system)
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    token = callback_token(settings.data_dir)
    system.env["HERALD_CALLBACK_TOKEN"] = token
    sandbox_url = f"http://{settings.sandbox_host}:{settings.sandbox_port}"
    choices = vendor_choices(os.environ)
    sandboxed = [vendor for vendor, choice in choices.items() if choice == "sandbox"]
    herald_env, sandbox_env = sandbox_settings(sandbox_url, api_url, token, sandboxed)
    if sandboxed:
        system.env |= herald_env
        sandbox_env["SANDBOX_LOG_FILE"] = str((settings.data_dir / "sandbox-sends.jsonl").resolve())
        system.start(
            "sandbox",
            [
                python,
                "-m",
                "worker.sandbox",
                "--host",
                settings.sandbox_host,
                "--port",
                str(settings.sandbox_port),
            ],
            sandbox_env,
        )
    write_local_env(system.env)
    get_settings.cache_clear()
    migrate.upgrade()
    try:
        check_can_start(get_settings())
    except ConfigurationError as exc:
        raise SystemExit(f"the API cannot start: {exc}") from None
    system.start(
        "api",
        [
            python,
            "-m",
            "uvicorn",
            "worker.api:api",
            "--host",
            settings.api_host,
            "--port",
            str(settings.api_port),
        ],
    )
    celery = [python, "-m", "celery", "-A", "worker"]
    system.start(
        "worker",
        [
            *celery,
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(settings.worker_concurrency),
            "--hostname",
            "herald@%h",
        ],
    )
    system.start(
        "beat",
        [
            *celery,
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.data_dir / "celerybeat-schedule"),
        ],
    )
    flower = [
        *celery,
        "flower",
        "--address=127.0.0.1",
        f"--port={settings.flower_port}",
        "--max_tasks=10000",
    ]
    flower_auth = flower_basic_auth(settings)
    system.start("flower", flower, {"FLOWER_BASIC_AUTH": flower_auth})
    wait_for_http(f"{api_url}/healthz", "api", system)
    if sandboxed:
        system.say(f"sandbox  {sandbox_url}  (for the vendors marked sandbox below)")
    system.say(f"api      {api_url}  (docs at {api_url}/docs)")
    for line in vendor_lines(choices, missing_vendor_settings(get_settings()), api_url, token):
        system.say(line)
    if "real" in choices.values():
        system.say(
            f"         register these URLs under the address where the vendors reach this API; "
            f"the token is HERALD_CALLBACK_TOKEN, or else kept in "
            f"{settings.data_dir / CALLBACK_TOKEN_FILE}"
        )
    flower_user, _, flower_password = flower_auth.partition(":")
    system.say(
        f"flower   http://127.0.0.1:{settings.flower_port}"
        f"  (user {flower_user}, password {flower_password})"
    )
    system.say(f"store    {settings.store_url}")
    system.say(f"logs     {system.logs}/")
    system.say("ready: try  herald send sms --to 13800138000 --content '【Herald】您好'")


def ports_to_listen_on(settings: Settings, *, sandbox: bool) -> dict[str, tuple[str, int]]:
    """What `herald up` serves, by the setting that names its port: (host, port)."""
    ports = {
        "HERALD_API_PORT": (settings.api_host, settings.api_port),
        "HERALD_FLOWER_PORT": ("127.0.0.1", settings.flower_port),
    }
    if sandbox:
        ports["HERALD_SANDBOX_PORT"] = (settings.sandbox_host, settings.sandbox_port)
    return ports


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind there now (a port left in TIME_WAIT counts as free, as it
    does for uvicorn, which binds with SO_REUSEADDR too)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_free(ports: Mapping[str, tuple[str, int]]) -> None:
    """Refuse to start when a port is taken: otherwise another process (a second `herald up`)
    would answer the checks and this one would say "ready" while serving nothing."""
    busy = [
        f"{host}:{port} ({name})"
        for name, (host, port) in ports.items()
        if not port_is_free(host, port)
    ]
    if busy:
        raise SystemExit(
            "cannot start: already in use: "
            + ", ".join(busy)
            + ". Is another `herald up` running? Stop it, or choose other ports with these "
            "settings."
        )


def ensure_redis(system: LocalSystem) -> None:
    url = system.settings.redis_url
    if redis_answers(url):
        return
    if is_sentinel_url(url):
        raise SystemExit(
            f"no Redis master named {system.settings.redis_sentinel_master!r} answers through "
            "the sentinels of HERALD_REDIS_URL"
        )
    binary = shutil.which("redis-server")
    parts = urlsplit(url)
    if binary is None or parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"no Redis answers at {url}, and none can be started here")
    folder = (system.settings.data_dir / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    system.start(
        "redis",
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(parts.port or 6379),
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
        ],
    )
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"the private redis-server did not answer at {url}")
        time.sleep(0.1)
    system.say(f"redis    {url}  (private, data in {folder})")


def wait_for_http(url: str, name: str, system: LocalSystem, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} did not answer at {url}; see {system.logs}/{name}.log")


def write_local_env(values: Mapping[str, str]) -> None:
    path = local_env_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{key}={value}\n" for key, value in sorted(values.items())))
