"""The distributed profile's services on one machine: a private PostgreSQL cluster, Redis, an S3 endpoint (moto),
an MLflow tracking server, Celery workers and the Dagster daemon, each a child process on 127.0.0.1 and a free port.

``ServiceStack`` is a context manager: whatever it started is stopped on exit, on failure too (each service is the
leader of its own process group, so a Celery worker's pool and the daemon's code server and runs go with it).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "quant-cluster"
# moto accepts any credentials; real deployments take them from the environment or an instance role.
LOCAL_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "quant", "AWS_SECRET_ACCESS_KEY": "quant-local", "AWS_DEFAULT_REGION": "us-east-1"}
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(ready: Callable[[], bool], what: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting; see {log}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.25)
    raise RuntimeError(f"{what} was not ready after {seconds:.0f}s; see {log}:\n{_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def _port_open(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    return probe


def _postgres_binaries() -> Path:
    """Debian's server binaries live outside PATH (/usr/lib/postgresql/<version>/bin)."""
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: `apt-get install -y postgresql` (Debian) provides initdb")
    return versions[-1].parent


@dataclass
class ServiceStack:
    """Starts the services into ``root`` (logs, data) with ``env`` as the environment every child shares."""

    root: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    _private_dirs: list[Path] = field(default_factory=list)

    def __enter__(self) -> ServiceStack:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None, user: str | None = None) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        if user:
            args = ["runuser", "-u", user, "--", *args]
        with open(log, "ab") as out:
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env or self.env, cwd=REPO, start_new_session=True)
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        """Stop every service, newest first: SIGTERM to its process group, SIGKILL after 20 s."""
        for name, process in reversed(self.processes):
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    _signal_group(process, signal.SIGKILL)
                    process.wait(10)
            # Children that outlived their leader (a run worker, a celery pool process) share its group.
            _signal_group(process, signal.SIGKILL)
        self.processes.clear()
        for folder in self._private_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    # -- PostgreSQL ---------------------------------------------------------------------------------------------
    def start_postgres(self, databases: tuple[str, ...] = ("dagster", "mlflow")) -> str:
        """A private cluster (initdb in a temporary folder, trust auth on 127.0.0.1); returns its SQLAlchemy URL
        without a database (append ``/dagster``)."""
        binaries = _postgres_binaries()
        # PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user, in a folder of its own.
        user = "postgres" if os.geteuid() == 0 else None
        data = Path(tempfile.mkdtemp(prefix="quant-pg-"))
        self._private_dirs.append(data)
        if user:
            entry = pwd.getpwnam(user)
            os.chown(data, entry.pw_uid, entry.pw_gid)
        initdb = subprocess.run((["runuser", "-u", user, "--"] if user else []) +
                                [str(binaries / "initdb"), "-D", str(data / "db"), "-U", "quant", "--auth=trust",
                                 "-E", "UTF8", "--no-sync"], capture_output=True, text=True)
        if initdb.returncode:
            raise RuntimeError(f"initdb failed: {initdb.stderr.strip() or initdb.stdout.strip()}")
        port = free_port()
        process = self._spawn("postgres", [str(binaries / "postgres"), "-D", str(data / "db"), "-p", str(port),
                                           "-h", "127.0.0.1", "-k", str(data), "-c", "fsync=off",
                                           "-c", "shared_buffers=32MB", "-c", "max_connections=200"], user=user)
        url = f"postgresql://quant@127.0.0.1:{port}"
        _wait_until(lambda: _pg_accepts(url), "PostgreSQL", process, self.root / "postgres.log")
        import psycopg2

        con = psycopg2.connect(f"{url}/postgres")
        con.autocommit = True
        with con.cursor() as cursor:
            for name in databases:
                cursor.execute(f"CREATE DATABASE {name}")
        con.close()
        # SQLAlchemy's URL names the driver that is installed (Dagster and MLflow would otherwise look for psycopg 3).
        return url.replace("postgresql://", "postgresql+psycopg2://")

    # -- Redis --------------------------------------------------------------------------------------------------
    def start_redis(self) -> str:
        port = free_port()
        process = self._spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(self.root)])
        _wait_until(_port_open(port), "Redis", process, self.root / "redis.log")
        return f"redis://127.0.0.1:{port}/0"

    # -- S3 (moto) ----------------------------------------------------------------------------------------------
    def start_object_store(self) -> str:
        """moto's S3 server with the bucket ``BUCKET``; returns the endpoint URL."""
        port = free_port()
        process = self._spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)])
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until(_port_open(port), "the S3 endpoint (moto)", process, self.root / "s3.log")
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=LOCAL_S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=LOCAL_S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                     region_name=LOCAL_S3_CREDENTIALS["AWS_DEFAULT_REGION"]).create_bucket(Bucket=BUCKET)
        return endpoint

    # -- MLflow -------------------------------------------------------------------------------------------------
    def start_mlflow(self, backend_url: str, artifacts: str) -> str:
        """An MLflow tracking server on PostgreSQL, proxying artifacts to ``artifacts`` (s3://...)."""
        port = free_port()
        process = self._spawn("mlflow", [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_url,
                                         "--artifacts-destination", artifacts, "--serve-artifacts",
                                         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])
        _wait_until(_http_ok(f"http://127.0.0.1:{port}/health"), "the MLflow server", process, self.root / "mlflow.log", 240)
        return f"http://127.0.0.1:{port}"

    # -- Dagster ------------------------------------------------------------------------------------------------
    def start_celery_worker(self, name: str, queues: tuple[str, ...], config_yaml: Path) -> subprocess.Popen:
        """One dagster-celery worker with one process (concurrency 1): one step at a time. The queues go to Celery as
        one comma-separated ``-Q`` (dagster-celery's repeated ``-q`` leaves Celery listening on the last one only)."""
        args = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config_yaml),
                "-n", name, "-l", "INFO", "-q", ",".join(queues), "--", "-c", "1"]
        # dagster-celery starts `celery` by name: the venv's bin first on the PATH.
        path = os.pathsep.join(filter(None, [str(BIN), self.env.get("PATH")]))
        process = self._spawn(f"worker-{name}", args, env={**self.env, **ONE_THREAD, "PATH": path})
        log = self.root / f"worker-{name}.log"
        _wait_until(lambda: " ready." in log.read_text(errors="replace"), f"Celery worker {name}", process, log, 240)
        return process

    def start_daemon(self) -> subprocess.Popen:
        process = self._spawn("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")])
        log = self.root / "daemon.log"
        _wait_until(lambda: "BackfillDaemon" in log.read_text(errors="replace"), "the Dagster daemon", process, log, 240)
        return process


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _pg_accepts(url: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(f"{url}/postgres", connect_timeout=2).close()
        return True
    except psycopg2.OperationalError:
        return False


def _http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        import httpx

        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    return probe
