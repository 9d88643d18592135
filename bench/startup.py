"""Benchmark `startup`: demo cold start, idle memory of `naho serve`, login page under 50 clients.

    uv run python bench/startup.py [--quick] [--database-url URL]

1. `demo_cold_start_s`: launch `naho demo` on a fresh empty SQLite file and time until
   GET /connexion answers 200 (migrate + seed + server start + first page). Median of N runs
   (full 5, quick 2), each on a new file; `demo_cold_start_max_s` is the slowest run.
   Always SQLite: the demo is SQLite by definition, whatever --database-url says.
2. `serve_idle_rss_mb`: `naho migrate`, `naho seed`, then `naho serve` on that database
   (SQLite, or a fresh PostgreSQL database with --database-url); a few requests (login page,
   one sign-in, home page), 5 s idle, then the RSS of the server and all its children.
3. `login_p95_ms`: 50 concurrent clients (one httpx.AsyncClient and cookie jar each) GET
   /connexion repeatedly (full 40 each = 2,000 requests, quick 10 each).
   `login_post_p95_ms`: 50 concurrent clients each sign in for real (GET /connexion for the
   CSRF cookie and field, then POST /connexion as `medecin`, expect 303), full 3 rounds each,
   quick 1; only the POST is timed. `errors` counts every unexpected status or exception.

The load generator runs on the same 2 cores as the server: its own CPU use is inside the
latencies, and so is whatever else the machine is doing (loadavg is recorded in params).
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as common
import httpx

NAME = "startup"
CLIENTS = 50
SIGNIN_USER = "medecin"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

GOALS = {"demo_cold_start_s": "< 20", "serve_idle_rss_mb": "< 250", "login_p95_ms": "< 100"}
UNITS = {
    "demo_cold_start_s": "s", "demo_cold_start_max_s": "s",
    "migrate_s": "s", "seed_s": "s", "serve_ready_s": "s",
    "serve_idle_rss_mb": "MiB", "serve_rss_after_load_mb": "MiB",
    "login_p50_ms": "ms", "login_p95_ms": "ms", "login_p99_ms": "ms", "login_rps": "req/s",
    "login_post_p50_ms": "ms", "login_post_p95_ms": "ms", "login_post_p99_ms": "ms",
    "login_post_rps": "req/s",
    "errors": "count",
    "login_1client_p50_ms": "ms", "login_post_1client_ms": "ms",
    "login_rawclient_p50_ms": "ms", "login_rawclient_p95_ms": "ms", "login_rawclient_rps": "req/s",
}


@dataclass
class Params:
    quick: bool
    cold_runs: int
    requests_per_client: int
    signin_rounds: int
    idle_seconds: float = 5.0
    clients: int = CLIENTS
    phase_timeout_s: float = 240.0

    @classmethod
    def for_run(cls, quick: bool) -> Params:
        if quick:
            return cls(quick=True, cold_runs=2, requests_per_client=10, signin_rounds=1,
                       phase_timeout_s=25.0)
        return cls(quick=False, cold_runs=5, requests_per_client=40, signin_rounds=3)


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    def error(self, what: str) -> None:
        if len(self.errors) < 1000:
            self.errors.append(what)
        else:
            self.errors.append("…")


# --------------------------------------------------------------------------------------------
# 1. Cold start of the demo


def demo_cold_start(params: Params, scratch: Path) -> list[float]:
    runs = []
    for i in range(params.cold_runs):
        run_dir = scratch / f"demo-{i}"
        run_dir.mkdir()
        env = common.naho_env(common.fresh_sqlite_url(run_dir))
        server = common.Server(["demo"], env, run_dir / "demo.log")
        with server:
            elapsed = server.wait_ready("/connexion", timeout=120)
        runs.append(elapsed)
        print(f"  demo cold start {i + 1}/{params.cold_runs}: {elapsed:.2f} s", flush=True)
    return runs


# --------------------------------------------------------------------------------------------
# 3. Load on the login page


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(30.0, connect=10.0)


async def _get_pages(base_url: str, params: Params, deadline: float) -> Load:
    load = Load()

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=_timeout()) as client:
            for _ in range(params.requests_per_client):
                if time.perf_counter() > deadline:
                    load.error("phase deadline reached")
                    continue
                start = time.perf_counter()
                try:
                    response = await client.get("/connexion")
                except httpx.HTTPError as exc:
                    load.error(f"GET /connexion: {type(exc).__name__}")
                    continue
                load.latencies_ms.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    load.error(f"GET /connexion: {response.status_code}")

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client_loop() for _ in range(params.clients))),
                           timeout=max(1.0, deadline - time.perf_counter()) + 30)
    load.wall_s = time.perf_counter() - start
    return load


async def _sign_in(client: httpx.AsyncClient, load: Load | None) -> bool:
    """GET /connexion for the CSRF cookie and field, POST the form; time the POST into load."""
    client.cookies.clear()
    page = await client.get("/connexion")
    match = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or match is None or "naho_csrf" not in client.cookies:
        if load is not None:
            load.error(f"GET /connexion before sign-in: {page.status_code}, csrf field "
                       f"{'found' if match else 'missing'}, cookie {'naho_csrf' in client.cookies}")
        return False
    form = {"username": SIGNIN_USER, "password": common.DEFAULT_PASSWORD,
            "csrf_token": match.group(1), "suivant": "/accueil"}
    start = time.perf_counter()
    response = await client.post("/connexion", data=form, follow_redirects=False)
    elapsed_ms = (time.perf_counter() - start) * 1000
    if load is not None:
        load.latencies_ms.append(elapsed_ms)
        if response.status_code != 303:
            load.error(f"POST /connexion: {response.status_code}")
    return response.status_code == 303


async def _sign_ins(base_url: str, params: Params, deadline: float) -> Load:
    load = Load()

    async def client_loop() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=_timeout()) as client:
            for _ in range(params.signin_rounds):
                if time.perf_counter() > deadline:
                    load.error("phase deadline reached")
                    continue
                try:
                    await _sign_in(client, load)
                except httpx.HTTPError as exc:
                    load.error(f"sign-in: {type(exc).__name__}")

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client_loop() for _ in range(params.clients))),
                           timeout=max(1.0, deadline - time.perf_counter()) + 30)
    load.wall_s = time.perf_counter() - start
    return load


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            # keep only the naho_csrf cookie among several set-cookie headers
            if key != "set-cookie" or "naho_csrf=" in value:
                headers[key] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                break
        return status, headers, bytes(body)
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


async def _raw_get_pages(port: int, params: Params, deadline: float) -> Load:
    """The same GET load with a minimal HTTP/1.1 keep-alive client on asyncio streams.

    Not a contract figure: httpx costs the load generator a few ms of CPU per request, on the
    same two cores as the server; this shows how much of login_p95_ms is the generator's.
    """
    load = Load()

    async def client_loop() -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        cookie = ""
        try:
            for _ in range(params.requests_per_client):
                if time.perf_counter() > deadline:
                    load.error("phase deadline reached")
                    continue
                start = time.perf_counter()
                try:
                    if streams is None:
                        streams = await asyncio.wait_for(
                            asyncio.open_connection(common.LOOPBACK, port), 10)
                    reader, writer = streams
                    writer.write((f"GET /connexion HTTP/1.1\r\nHost: {common.LOOPBACK}:{port}\r\n"
                                  f"Accept: text/html\r\n{cookie}\r\n").encode())
                    status, headers, _ = await asyncio.wait_for(_read_response(reader), 30)
                except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError,
                        asyncio.LimitOverrunError) as exc:
                    load.error(f"raw GET /connexion: {type(exc).__name__}")
                    if streams is not None:
                        streams[1].close()
                    streams = None
                    continue
                load.latencies_ms.append((time.perf_counter() - start) * 1000)
                if status != 200:
                    load.error(f"raw GET /connexion: {status}")
                if not cookie and "set-cookie" in headers:
                    cookie = "Cookie: " + headers["set-cookie"].split(";", 1)[0] + "\r\n"
                if headers.get("connection", "").lower() == "close":
                    streams[1].close()
                    streams = None
        finally:
            if streams is not None:
                streams[1].close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client_loop() for _ in range(params.clients))),
                           timeout=max(1.0, deadline - time.perf_counter()) + 30)
    load.wall_s = time.perf_counter() - start
    return load


async def _single_client(base_url: str, gets: int,
                         sign_ins: int) -> tuple[list[float], list[float]]:
    """Unloaded latencies, for context: one client, requests one after the other."""
    get_ms: list[float] = []
    post = Load()
    async with httpx.AsyncClient(base_url=base_url, timeout=_timeout()) as client:
        for _ in range(gets):
            start = time.perf_counter()
            (await client.get("/connexion")).raise_for_status()
            get_ms.append((time.perf_counter() - start) * 1000)
        for _ in range(sign_ins):
            await _sign_in(client, post)
    if post.errors:
        raise common.ProcessFailed(f"single-client sign-in failed: {post.errors[:3]}")
    return get_ms, post.latencies_ms


async def _warm_up(base_url: str) -> None:
    """A few ordinary requests before measuring idle memory: pages, one sign-in, home page."""
    async with httpx.AsyncClient(base_url=base_url, timeout=_timeout()) as client:
        for _ in range(5):
            (await client.get("/connexion")).raise_for_status()
        if not await _sign_in(client, None):
            raise common.ProcessFailed(f"warm-up sign-in as {SIGNIN_USER} did not answer 303")
        home = await client.get("/accueil")
        if home.status_code != 200:
            raise common.ProcessFailed(f"GET /accueil after sign-in answered {home.status_code}")


# --------------------------------------------------------------------------------------------
# 2. Idle memory, then load, on a seeded database


def serve_and_load(params: Params, database_url: str, scratch: Path) -> dict[str, Any]:
    env = common.naho_env(database_url)
    log = scratch / "serve.log"
    out: dict[str, Any] = {}
    out["migrate_s"] = common.run_cli(["migrate"], env, log, timeout=180)
    out["seed_s"] = common.run_cli(["seed"], env, log, timeout=300)
    print(f"  migrate {out['migrate_s']:.2f} s, seed {out['seed_s']:.2f} s", flush=True)
    with common.Server(["serve"], env, log) as server:
        out["serve_ready_s"] = server.wait_ready("/connexion", timeout=60)
        asyncio.run(_warm_up(server.base_url))
        time.sleep(params.idle_seconds)
        out["processes"] = len(common.process_tree(server.pid))
        out["serve_idle_rss_mb"] = common.tree_rss_mb(server.pid)
        print(f"  serve ready in {out['serve_ready_s']:.2f} s, idle RSS "
              f"{out['serve_idle_rss_mb']:.1f} MiB over {out['processes']} process(es)", flush=True)

        out["single_get_ms"], out["single_post_ms"] = asyncio.run(
            _single_client(server.base_url, gets=30, sign_ins=3))

        phases = (("get", "GET", lambda d: _get_pages(server.base_url, params, d)),
                  ("raw", "GET (raw client)", lambda d: _raw_get_pages(server.port, params, d)),
                  ("post", "POST", lambda d: _sign_ins(server.base_url, params, d)))
        for phase, label, run in phases:
            server_cpu, own_cpu = common.tree_cpu_seconds(server.pid), time.process_time()
            load = out[phase] = asyncio.run(run(time.perf_counter() + params.phase_timeout_s))
            load.server_cpu_s = common.tree_cpu_seconds(server.pid) - server_cpu
            load.client_cpu_s = time.process_time() - own_cpu
            print(f"  {label} /connexion: {len(load.latencies_ms)} "
                  f"requests in {load.wall_s:.2f} s (CPU: server {load.server_cpu_s:.1f} s, "
                  f"load generator {load.client_cpu_s:.1f} s)", flush=True)
        out["serve_rss_after_load_mb"] = common.tree_rss_mb(server.pid)
        if server.proc is not None and server.proc.poll() is not None:
            raise common.ProcessFailed(f"`naho serve` died during the load:\n{common.tail(log)}")
    return out


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args(argv)
    common.install_sigterm_handler()
    params = Params.for_run(args.quick)
    run_params: dict[str, Any] = common.common_params(args.quick)
    started = time.perf_counter()

    with common.scratch_directory() as scratch:
        print(f"startup benchmark ({'quick' if args.quick else 'full'}), "
              f"{common.machine_description()}", flush=True)
        cold = demo_cold_start(params, scratch)
        with common.fresh_database(args.database_url, scratch) as (database_url, backend):
            print(f"  serve/login on {backend}", flush=True)
            served = serve_and_load(params, database_url, scratch)

    get: Load = served["get"]
    raw: Load = served["raw"]
    post: Load = served["post"]
    get_ms = common.latency_summary(get.latencies_ms)
    raw_ms = common.latency_summary(raw.latencies_ms)
    post_ms = common.latency_summary(post.latencies_ms)
    all_errors = get.errors + raw.errors + post.errors
    errors = len(all_errors)
    figures: dict[str, float | int] = {
        "demo_cold_start_s": common.median(cold),
        "demo_cold_start_max_s": max(cold),
        "serve_idle_rss_mb": served["serve_idle_rss_mb"],
        "login_p50_ms": get_ms["p50"],
        "login_p95_ms": get_ms["p95"],
        "login_p99_ms": get_ms["p99"],
        "login_rps": len(get.latencies_ms) / get.wall_s if get.wall_s else 0.0,
        "login_post_p50_ms": post_ms["p50"],
        "login_post_p95_ms": post_ms["p95"],
        "login_post_p99_ms": post_ms["p99"],
        "login_post_rps": len(post.latencies_ms) / post.wall_s if post.wall_s else 0.0,
        "errors": errors,
        "serve_rss_after_load_mb": served["serve_rss_after_load_mb"],
        "migrate_s": served["migrate_s"],
        "seed_s": served["seed_s"],
        "serve_ready_s": served["serve_ready_s"],
        "login_1client_p50_ms": common.median(served["single_get_ms"]),
        "login_post_1client_ms": common.median(served["single_post_ms"]),
        "login_rawclient_p50_ms": raw_ms["p50"],
        "login_rawclient_p95_ms": raw_ms["p95"],
        "login_rawclient_rps": len(raw.latencies_ms) / raw.wall_s if raw.wall_s else 0.0,
    }
    versions = common.package_versions("fastapi", "sqlalchemy", "uvicorn", "starlette", "httpx",
                                       "psycopg", "argon2-cffi")
    run_params.update({
        "demo_backend": "sqlite",
        "serve_backend": backend,
        "postgresql_server": (common.postgres_version(args.database_url)
                              if backend == "postgresql" and args.database_url else None),
        "cold_runs": params.cold_runs,
        "demo_cold_start_runs_s": cold,
        "clients": params.clients,
        "get_requests_per_client": params.requests_per_client,
        "get_requests": len(get.latencies_ms),
        "signin_rounds_per_client": params.signin_rounds,
        "signins": len(post.latencies_ms),
        "login_max_ms": get_ms["max"],
        "login_post_max_ms": post_ms["max"],
        "idle_seconds": params.idle_seconds,
        "server_cpu_ms_per_get": 1000 * get.server_cpu_s / max(1, len(get.latencies_ms)),
        "server_cpu_ms_per_signin": 1000 * post.server_cpu_s / max(1, len(post.latencies_ms)),
        "load_generator_cpu_s": {"get": get.client_cpu_s, "get_raw": raw.client_cpu_s,
                                 "post": post.client_cpu_s},
        "server_cpu_s": {"get": get.server_cpu_s, "get_raw": raw.server_cpu_s,
                         "post": post.server_cpu_s},
        "wall_s": {"get": get.wall_s, "get_raw": raw.wall_s, "post": post.wall_s},
        "serve_processes": served["processes"],
        "first_errors": all_errors[:10],
        "versions": versions,
        "launcher": "<.venv>/bin/python -m naho.cli (demo|serve|migrate|seed) --host 127.0.0.1",
        "load_generator": "httpx.AsyncClient per client, one asyncio loop, same machine",
        "loadavg_end": common.load_average(),
        "total_s": time.perf_counter() - started,
    })
    common.print_table(f"startup — {'quick' if args.quick else 'full'}, serve/login on {backend}",
                       figures, UNITS, GOALS)
    if errors:
        print(f"\n{errors} error(s), first: {all_errors[:5]}")
    if not args.no_write:
        path = common.write_results(NAME, figures, UNITS, run_params)
        print(f"\nwritten {path.relative_to(common.ROOT)} in {run_params['total_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
