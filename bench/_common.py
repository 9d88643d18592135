"""Shared helpers for the benchmarks in bench/ (see DESIGN.md, *Benchmarks*).

Every benchmark is `python bench/<name>.py [--quick] [--database-url URL]`; it prints a short
table and writes `bench/results/<name>.json` with `figures`, `units`, `params` and `machine`.
This module holds what they share: arguments, free ports, naho subprocesses (started in their
own process group, always stopped: SIGTERM, then SIGKILL), RSS of a process tree, percentiles,
a throwaway database (temporary SQLite file or a fresh PostgreSQL database) and the results file.

Only the standard library here (plus psycopg, imported lazily for PostgreSQL), so a benchmark
can import it before deciding what it needs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
LOOPBACK = "127.0.0.1"
DEFAULT_PASSWORD = "demo-naho-2026"  # naho.config.DEVELOPMENT_PASSWORD, printed by `naho demo`


# ---------------------------------------------------------------------------------------------
# Arguments


def parser(description: str) -> argparse.ArgumentParser:
    """The common command line: --quick and --database-url. Add a benchmark's own options to it."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="reduced measurement, finishes in under 60 seconds")
    p.add_argument("--database-url", default=None, metavar="URL",
                   help="sqlite (default: a fresh temporary file) or postgresql://… (a fresh "
                        "database naho_bench_<random> is created on that server, then dropped)")
    p.add_argument("--no-write", action="store_true",
                   help="print the table but do not overwrite bench/results/<name>.json")
    return p


def install_sigterm_handler() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop the subprocesses we started."""
    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


# ---------------------------------------------------------------------------------------------
# Processes


def venv_python() -> str:
    """The interpreter that has naho installed: the project's .venv if present, else this one."""
    candidate = ROOT / ".venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def naho_command(*args: str) -> list[str]:
    """`naho ARGS` without going through `uv run` (whose own start-up would be measured too)."""
    return [venv_python(), "-m", "naho.cli", *args]


def naho_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NAHO_DATABASE_URL": database_url, "NAHO_MODE": "development",
                "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "120"})
    env.update(extra)
    return env


def free_port() -> int:
    """A port the kernel just reported free on the loopback (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status of GET url, or None if nothing answers (connection refused, timeout)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ProcessFailed(RuntimeError):
    pass


def run_cli(args: Sequence[str], env: Mapping[str, str], log: Path, timeout: float = 300) -> float:
    """Run `naho ARGS` to completion (output appended to log); return its wall time in seconds."""
    start = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(naho_command(*args), env=dict(env), cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        finally:
            _stop_group(proc, grace=5)
    elapsed = time.perf_counter() - start
    if code != 0:
        raise ProcessFailed(f"`naho {' '.join(args)}` exited with {code}:\n{tail(log)}")
    return elapsed


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> int | None:
    """SIGTERM the process group we created, wait `grace` s, then SIGKILL it. Idempotent."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    if proc.poll() is None and pgid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if pgid is not None:  # the leader may be gone while children linger
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    return proc.returncode


@dataclass
class Server:
    """A naho server subprocess (`naho demo` or `naho serve`) on 127.0.0.1:port.

    Use as a context manager: the process group is stopped on exit, whatever happened.
    """

    args: Sequence[str]
    env: Mapping[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Server:
        cmd = naho_command(*self.args, "--host", LOOPBACK, "--port", str(self.port))
        self._out = self.log.open("ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=dict(self.env), cwd=ROOT, stdout=self._out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        return self

    def wait_ready(self, path: str = "/connexion", timeout: float = 120.0,
                   interval: float = 0.05) -> float:
        """Poll GET path until it answers 200; return seconds since start(). Bounded by timeout."""
        assert self.proc is not None
        url = self.base_url + path
        deadline = self.started_at + timeout
        last: int | None = None
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise ProcessFailed(f"`naho {' '.join(self.args)}` exited with "
                                    f"{self.proc.returncode} before {path} answered:\n"
                                    f"{tail(self.log)}")
            last = http_status(url, timeout=min(2.0, max(0.1, deadline - time.perf_counter())))
            if last == 200:
                return time.perf_counter() - self.started_at
            time.sleep(interval)
        raise ProcessFailed(f"{url} did not answer 200 within {timeout:.0f} s "
                            f"(last status {last}):\n{tail(self.log)}")

    def stop(self, grace: float = 10.0) -> int | None:
        code = None
        if self.proc is not None:
            code = _stop_group(self.proc, grace)
        out = getattr(self, "_out", None)
        if out is not None:
            out.close()
        return code

    def __enter__(self) -> Server:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Memory


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/*/stat)."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_mb(pid: int) -> float:
    """Sum of VmRSS over the process and its descendants, in MiB."""
    return sum(rss_bytes(p) for p in process_tree(pid)) / 1024 / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time consumed so far by one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # after "(comm)": state=0 ... utime=11 stime=12 (fields 14 and 15 of proc(5))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of the process and its live descendants."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(values: Sequence[float], p: float) -> float:
    """p-th percentile (0-100), linear interpolation between closest ranks; nan if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "max": max(ms) if ms else math.nan}


# ---------------------------------------------------------------------------------------------
# Databases


def _is_postgres(url: str) -> bool:
    return url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def _libpq_url(url: str) -> str:
    """psycopg wants postgresql://, not SQLAlchemy's postgresql+psycopg://."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.split("+", 1)[0] in ("postgresql", "postgres") else url


@contextlib.contextmanager
def scratch_directory(prefix: str = "naho-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fresh_sqlite_url(directory: Path, name: str = "naho.sqlite3") -> str:
    return f"sqlite:///{directory / name}"  # absolute path: sqlite:////tmp/...


@contextlib.contextmanager
def fresh_database(url: str | None, directory: Path) -> Iterator[tuple[str, str]]:
    """Yield (database_url, backend) for an empty throwaway database.

    None or any sqlite URL: a new file in `directory` (a given sqlite path is never touched).
    postgresql://…: CREATE DATABASE naho_bench_<random> on that server, DROP it afterwards.
    """
    if url is None or url.startswith("sqlite"):
        yield fresh_sqlite_url(directory, f"naho-{secrets.token_hex(4)}.sqlite3"), "sqlite"
        return
    if not _is_postgres(url):
        raise SystemExit(f"unsupported --database-url {url!r}: sqlite or postgresql only")
    import psycopg

    admin = _libpq_url(url)
    name = f"naho_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin)
    bench_url = urllib.parse.urlunsplit(parts._replace(path="/" + name))
    try:
        yield bench_url, "postgresql"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_version(url: str) -> str | None:
    if not _is_postgres(url):
        return None
    import psycopg

    with psycopg.connect(_libpq_url(url), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else None


# ---------------------------------------------------------------------------------------------
# Machine and results


def machine_description() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = math.nan
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
                break
    return (f"{model}, {os.cpu_count()} CPUs (nproc {nproc()}), {mem_gib:.1f} GiB RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def nproc() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def package_versions(*names: str) -> dict[str, str]:
    """Versions as installed in the venv that runs naho (not necessarily this interpreter)."""
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))")
    try:
        done = subprocess.run([venv_python(), "-c", code, *names], capture_output=True, text=True,
                              timeout=30, check=True)
        versions: dict[str, str] = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        versions = {}
        for n in names:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions[n] = importlib.metadata.version(n)
    return versions


def common_params(quick: bool) -> dict[str, Any]:
    """What every results file records besides its own parameters."""
    params: dict[str, Any] = {"quick": quick, "python": platform.python_version(), "nproc": nproc(),
                              "loadavg_start": load_average()}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,  # read-only
                              capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            params["commit"] = head.stdout.strip()
    return params


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_results(name: str, figures: Mapping[str, float | int], units: Mapping[str, str],
                  params: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {"figures": _clean(dict(figures)), "units": dict(units),
                "params": _clean(dict(params)), "machine": machine_description()}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def print_table(title: str, figures: Mapping[str, float | int], units: Mapping[str, str],
                goals: Mapping[str, str] | None = None) -> None:
    goals = goals or {}
    header = ("figure", "value", "unit", "goal")
    rows = [(k, _fmt(v), units.get(k, ""), goals.get(k, "")) for k, v in figures.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print(f"{r[0].ljust(widths[0])}  {r[1].rjust(widths[1])}  {r[2].ljust(widths[2])}  {r[3]}")


def _fmt(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "n/a"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.2f}"
