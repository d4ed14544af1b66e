"""Every process the bank test needs, started here and owned here: a PostgreSQL cluster
of its own, a Redis of its own, gunicorn, a Celery worker and beat. Killing and
restarting them never touches the machine's shared services.

Each process runs in its own session (process group), so that a kill reaches a whole
Celery worker (its pool children too) and nothing else; the harness only ever signals
the process ids it started itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tools.live_server import free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def wait_for_port(port: int, *, timeout: float, alive: Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if alive is not None and alive.poll() is not None:
                raise RuntimeError(f"the process ended with {alive.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s") from None
            time.sleep(0.1)


Popen = subprocess.Popen[bytes]


# Every child started, one JSON line each ({"pid", "started"}), so that the next run can
# end what a harness killed without cleaning up left behind (and nothing else: a pid
# is only signalled while it is still the process that started then).
CHILDREN: Path | None = None


def spawn(command: list[str], *, log: Path, env: dict[str, str] | None = None) -> Popen:
    """A child in its own session, its output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 -- our own fixed command lines
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if CHILDREN is not None:
        with CHILDREN.open("a") as registry:
            registry.write(json.dumps({"pid": process.pid, "started": _started(process.pid)}))
            registry.write("\n")
    return process


def reap_leftovers(registry: Path) -> int:
    """SIGKILL the sessions of an earlier run's children that are still running."""
    ended = 0
    if registry.exists():
        for line in registry.read_text().splitlines():
            child = json.loads(line)
            if child["started"] and _started(child["pid"]) == child["started"]:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child["pid"], signal.SIGKILL)
                    ended += 1
        registry.unlink()
    return ended


def _started(pid: int) -> str:
    """The process's start time, in clock ticks since boot (/proc/<pid>/stat, field 22):
    with the pid, it names one process for good."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2 :].split()[19]


def kill_group(process: Popen, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the process and everything in its session (our own child only)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def stop(process: Popen, *, grace: float = 10.0) -> None:
    """SIGTERM the group, then SIGKILL it if it is still there after `grace` seconds."""
    if process.poll() is not None:
        return
    kill_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        kill_group(process, signal.SIGKILL)
        process.wait()
    # Pool children of a Celery worker may outlive their parent by a moment.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# PostgreSQL ---------------------------------------------------------------------------


def _postgres_bindir() -> Path:
    configured = os.environ.get("FAULTS_PG_BINDIR")
    if configured:
        return Path(configured)
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        found = shutil.which("initdb")
        if found is None:
            raise SystemExit("faults: PostgreSQL's initdb is not installed")
        return Path(found).parent
    return versions[-1]


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the postgres user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def postgres_home(var_dir: Path) -> Path:
    """Where the cluster lives: `var_dir` itself, unless the postgres user cannot reach
    it (a checkout under a private home directory); then a folder of ours under /tmp."""
    var_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return var_dir
    reach = subprocess.run(  # noqa: S603 -- our own fixed command line
        [*_as_postgres(), "test", "-x", str(var_dir)], check=False, capture_output=True
    )
    if reach.returncode == 0:
        return var_dir
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"openpay-faults-{digest}"
    fallback.mkdir(mode=0o755, exist_ok=True)
    return fallback


@dataclass
class PostgresCluster:
    """A cluster of our own: initdb into `data`, a free TCP port on 127.0.0.1, its unix
    socket inside the data directory, fsync on."""

    data: Path
    log: Path
    port: int = field(default_factory=free_port)
    bindir: Path = field(default_factory=_postgres_bindir)

    def __post_init__(self) -> None:
        self.data = self.data.resolve()
        self.log = self.log.resolve()

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(  # noqa: S603 -- our own fixed command line
            [*_as_postgres(), str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=check,
            capture_output=True,
            timeout=120,
        )

    def create(self) -> None:
        """A fresh cluster (a previous run's, if still running, is stopped first)."""
        if (self.data / "PG_VERSION").exists():
            self._pg_ctl("stop", "-m", "immediate", check=False)
            shutil.rmtree(self.data)
        self.data.mkdir(parents=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
            shutil.chown(self.log, "postgres", "postgres")
        subprocess.run(  # noqa: S603 -- our own fixed command line
            [
                *_as_postgres(),
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        settings = {
            "listen_addresses": f"'{HOST}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data}'",
            # The point of the test: acknowledged commits must survive a crash.
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "max_connections": "100",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] '",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# faults harness\n")
            for name, value in settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log))

    def restart_immediate(self) -> None:
        """`pg_ctl restart -m immediate`: every backend dies at once, no checkpoint; the
        restart replays the WAL (crash recovery)."""
        self._pg_ctl("restart", "-m", "immediate", "-w", "-t", "60", "-l", str(self.log))

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30", check=False)

    def running(self) -> bool:
        return self._pg_ctl("status", check=False).returncode == 0

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# Redis --------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server of our own, keeping nothing on disk."""

    directory: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: Popen | None = None
    paused: bool = False

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = spawn(
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ],
            log=self.log,
        )
        wait_for_port(self.port, timeout=20, alive=self.process)

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but nothing answers."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.process is not None and self.paused:
            os.kill(self.process.pid, signal.SIGCONT)
            self.paused = False

    def stop(self) -> None:
        """Shut it down: everything it held (queued Celery messages, counters) is lost."""
        if self.process is not None:
            self.resume()
            stop(self.process, grace=10)
            self.process = None


# The application ------------------------------------------------------------------------


def child_env(*, database_url: str, redis_url: str, base_url: str, var_dir: Path) -> dict[str, str]:
    """The environment of every product process: our own services, nothing shared."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV")
    }
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": base_url,
        "VAR_DIR": str(var_dir),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        # The receiver is on loopback.
        "WEBHOOKS_ALLOW_LOOPBACK": "true",
        # The retry schedule (5 s, 5 min, 30 min, 2 h, ...) in thousandths: 5 ms,
        # 0.3 s, 1.8 s, 7.2 s, ... so that a receiver failing 20 % of the time is
        # caught up with within the run.
        "WEBHOOK_TIME_SCALE_PERMILLE": "1",
        # The harness's clients all come from 127.0.0.1: the per-address limit would
        # measure the harness, not the faults. (429s are still retried if they come.)
        "API_RATE_LIMIT": "100000",
        "API_IP_RATE_LIMIT": "100000",
        "PYTHONUNBUFFERED": "1",
    }


def manage(*args: str, env: dict[str, str], timeout: float = 300) -> str:
    """`manage.py <args>`; its standard output, or SystemExit naming what failed."""
    done = subprocess.run(  # noqa: S603 -- our own fixed command line
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"faults: manage.py {' '.join(args)} failed ({done.returncode}):\n"
            + done.stderr.decode(errors="replace")[-3000:]
        )
    return done.stdout.decode()


@dataclass
class Gunicorn:
    """The project's web server, as `make run` starts it, with `workers` sync workers."""

    env: dict[str, str]
    log: Path
    workers: int
    port: int = field(default_factory=free_port)
    process: Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self.process = spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"{HOST}:{self.port}",
                "--workers",
                str(self.workers),
                "--graceful-timeout",
                "5",
                "--timeout",
                "30",
                "--log-level",
                "warning",
            ],
            log=self.log,
            env=self.env,
        )
        wait_for_port(self.port, timeout=60, alive=self.process)

    def worker_pids(self) -> list[int]:
        """The master's children, read from /proc."""
        if self.process is None:
            return []
        return children_of(self.process.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace=15)


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class CeleryProcess:
    """A Celery worker or beat, as `make run` starts them."""

    role: str  # "worker" or "beat"
    env: dict[str, str]
    log: Path
    schedule: Path
    process: Popen | None = None
    generation: int = 0

    def start(self) -> None:
        self.generation += 1
        if self.role == "worker":
            command = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                "2",
                "--hostname",
                f"faults{self.generation}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
        else:
            command = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(self.schedule),
                "--pidfile",
                "",
            ]
        self.process = spawn(command, log=self.log, env=self.env)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker: its main process and its pool children."""
        if self.process is not None:
            kill_group(self.process, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, grace=10)
