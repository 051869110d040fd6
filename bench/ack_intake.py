"""Ack intake: signed Twilio SMS webhooks per second into a real ``warnbot run``.

The daemon (demo configuration, SQLite) runs as its own process; a load
generator here (an aiohttp client pool, ``--connections`` at once) posts
Twilio-signed inbound SMS from the roster's phones for ``--seconds``: each is
a signature check, a person lookup, an answer recorded (or found a repeat) and
a TwiML reply. Baseline, same server, same run: ``GET /healthz``. The daemon's
CPU time per request (user + system, from ``/proc``) is reported for both.

    python bench/ack_intake.py [--seconds 10] [--connections 32] [--db sqlite|postgresql]

``--db postgresql`` runs on a scratch database created on 127.0.0.1:5432 and
dropped after. Last line: {"webhooks_per_s", "healthz_per_s", "ratio", "p50_ms",
"p99_ms", "cpu_ms_per_webhook", "cpu_ms_per_healthz", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from _pg import drop_pg, scratch_pg  # bench/ is on sys.path when run as a script
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-auth-token-not-a-secret"
PHONES = [
    line.split(",")[4]
    for line in (ROOT / "config" / "demo" / "roster.csv").read_text("utf-8").splitlines()[1:]
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WARNBOT_DATABASE_URL": database_url,
        "WARNBOT_WEB__PORT": str(port),
        "WARNBOT_WEB__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WARNBOT_TWILIO__AUTH_TOKEN": TOKEN,
        "WARNBOT_TWILIO__API_BASE_URL": "http://127.0.0.1:9",  # nothing is sent here
        "WARNBOT_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "warnbot", "--config", "config/demo/warnbot.toml", "run"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def wait_up(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the daemon did not become ready")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Request = Callable[[aiohttp.ClientSession], Any]


async def load(request: Request, seconds: float, connections: int) -> tuple[int, list[float]]:
    """Requests answered 2xx in ``seconds`` and each one's latency (s)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with request(session) as r:
                await r.read()
                assert r.status < 300, r.status
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return len(latencies), latencies


def webhook(base: str) -> Request:
    url = f"{base}/hooks/twilio/sms"
    validator = RequestValidator(TOKEN)
    forms = []
    for i in range(500):  # signed in advance: the generator must not be what is measured
        form = {"From": random.choice(PHONES), "Body": "收到", "MessageSid": f"SM{i:032x}"}
        forms.append((form, {"X-Twilio-Signature": validator.compute_signature(url, form)}))
    turn = iter(range(10**9))

    def post(session: aiohttp.ClientSession) -> Any:
        form, headers = forms[next(turn) % len(forms)]
        return session.post(url, data=form, headers=headers)

    return post


async def measure(base: str, pid: int, seconds: float, connections: int) -> dict[str, Any]:
    """Both loads against a running daemon: counts, latencies, its CPU seconds each."""
    health: Request = lambda s: s.get(f"{base}/healthz")  # noqa: E731
    await load(health, 1, connections)  # warm up
    c0 = cpu_s(pid)
    h_n, _ = await load(health, seconds, connections)
    c1 = cpu_s(pid)
    w_n, lat = await load(webhook(base), seconds, connections)
    c2 = cpu_s(pid)
    return {"h_n": h_n, "w_n": w_n, "lat": sorted(lat), "h_cpu": c1 - c0, "w_cpu": c2 - c1}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    name = None
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/ack.db"
        if args.db == "postgresql":
            url, name = await scratch_pg("warnbot_ack")
        daemon = start_daemon(url, port)
        try:
            await wait_up(base)
            m = await measure(base, daemon.pid, args.seconds, args.connections)
        finally:
            daemon.terminate()
            daemon.wait(30)
            if name:
                await drop_pg(name)
    lat = m["lat"]
    figures = {
        "webhooks_per_s": round(m["w_n"] / args.seconds, 1),
        "healthz_per_s": round(m["h_n"] / args.seconds, 1),
        "ratio": round(m["w_n"] / m["h_n"], 3),
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1),
        "cpu_ms_per_webhook": round(m["w_cpu"] * 1000 / m["w_n"], 3),
        "cpu_ms_per_healthz": round(m["h_cpu"] * 1000 / m["h_n"], 3),
        "connections": args.connections,
        "seconds": args.seconds,
        "db": args.db,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    asyncio.run(main())
