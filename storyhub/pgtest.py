"""Loopback PostgreSQL infrastructure for the test setup: a PgBouncer in transaction pooling
mode in front of the server, and a streaming replica of it on a second port.

Both are started on demand, idempotently (a lock file serialises concurrent test runs, and
a running one is reused), and left running for the next run. They run as the `postgres` OS
user (neither PgBouncer nor PostgreSQL runs as root). Debian's packages: `pgbouncer` is
installed with apt-get when missing (root only); the replica uses the server's own
binaries (`pg_basebackup`, `pg_ctl`).

Used by storyhub.settings.test (the PostgreSQL run of `make test` goes through PgBouncer)
and tests/db (the replica). Not imported by the application.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

STATE = Path(os.environ.get("STORYHUB_PGTEST_DIR", "/tmp/storyhub-pgtest"))  # noqa: S108 - loopback test state
PGBOUNCER_PORT = int(os.environ.get("STORYHUB_TEST_PGBOUNCER_PORT", "6435"))
REPLICA_PORT = int(os.environ.get("STORYHUB_TEST_REPLICA_PORT", "5439"))
OS_USER = "postgres"


class InfraError(RuntimeError):
    pass


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    STATE.mkdir(mode=0o755, exist_ok=True)
    with open(STATE / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_listening(host: str, port: int, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(host, port):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise InfraError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s\n{tail}")


def _as_postgres(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", OS_USER, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def _owned_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)
    return path


def _psql(host: str, port: int, user: str, dbname: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-h", host, "-p", str(port), "-U", user, "-d", dbname, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out.stdout.strip()


# --------------------------------------------------------------------------- PgBouncer


def pgbouncer_config(server_host: str, server_port: int, user: str) -> str:
    return f"""[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {PGBOUNCER_PORT}
unix_socket_dir =
auth_type = trust
auth_file = {STATE}/pgbouncer/users.txt
admin_users = {user}
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {STATE}/pgbouncer/pgbouncer.log
pidfile = {STATE}/pgbouncer/pgbouncer.pid
"""


def ensure_pgbouncer(server_host: str, server_port: int, user: str) -> tuple[str, int]:
    """A PgBouncer on 127.0.0.1:PGBOUNCER_PORT forwarding every database to the server."""
    with _locked("pgbouncer"):
        if _listening("127.0.0.1", PGBOUNCER_PORT):
            return "127.0.0.1", PGBOUNCER_PORT
        binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
        if binary is None and os.geteuid() == 0 and shutil.which("apt-get"):
            subprocess.run(["apt-get", "install", "-y", "-q", "pgbouncer"], check=True, capture_output=True)
            binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if binary is None:
            raise InfraError("pgbouncer is not installed (apt-get install pgbouncer), or set STORYHUB_TEST_PGBOUNCER=0")
        home = _owned_dir(STATE / "pgbouncer")
        (home / "users.txt").write_text(f'"{user}" ""\n')
        ini = home / "pgbouncer.ini"
        ini.write_text(pgbouncer_config(server_host, server_port, user))
        _as_postgres([binary, "-d", "-q", str(ini)])
        _wait_listening("127.0.0.1", PGBOUNCER_PORT, "pgbouncer", home / "pgbouncer.log")
        return "127.0.0.1", PGBOUNCER_PORT


def pgbouncer_release(dbname: str, user: str) -> None:
    """Close PgBouncer's server connections to `dbname` (its pool would keep them open,
    and DROP DATABASE refuses a database with connections)."""
    for command in (f"KILL {dbname}", f"RESUME {dbname}"):
        with contextlib.suppress(subprocess.CalledProcessError):
            _psql("127.0.0.1", PGBOUNCER_PORT, user, "pgbouncer", command)


# --------------------------------------------------------------------------- replica


def _pg_bin(name: str, version: str) -> str:
    debian = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
    return str(debian) if debian.exists() else (shutil.which(name) or name)


def _allow_replication(host: str, port: int, user: str) -> None:
    """A `replication` rule for loopback in the primary's pg_hba.conf (idempotent)."""
    rules = _psql(
        host, port, user, "postgres", "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database)"
    )
    if rules != "0":
        return
    hba = Path(_psql(host, port, user, "postgres", "SHOW hba_file"))
    with hba.open("a") as fh:
        fh.write("\n# added by storyhub.pgtest: streaming replica on loopback for the tests\n")
        fh.write(f"host replication {user} 127.0.0.1/32 trust\n")
    _psql(host, port, user, "postgres", "SELECT pg_reload_conf()")


def _replica_streaming(user: str) -> bool:
    if not _listening("127.0.0.1", REPLICA_PORT):
        return False
    try:
        return _psql("127.0.0.1", REPLICA_PORT, user, "postgres", "SELECT pg_is_in_recovery()") == "t"
    except subprocess.CalledProcessError:
        return False


def ensure_replica(primary_host: str, primary_port: int, user: str) -> tuple[str, int]:
    """A hot standby of the primary on 127.0.0.1:REPLICA_PORT (pg_basebackup -R into
    STATE/replica, then pg_ctl start), reused while it streams."""
    with _locked("replica"):
        if _replica_streaming(user):
            return "127.0.0.1", REPLICA_PORT
        version = _psql(primary_host, primary_port, user, "postgres", "SHOW server_version_num")[:2]
        _allow_replication(primary_host, primary_port, user)
        data = STATE / "replica"
        log = STATE / "replica.log"
        if data.exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                _as_postgres([_pg_bin("pg_ctl", version), "-D", str(data), "-m", "immediate", "stop"])
            shutil.rmtree(data)
        _owned_dir(data)
        _as_postgres(
            [_pg_bin("pg_basebackup", version), "-h", primary_host, "-p", str(primary_port), "-U", user]
            + ["-D", str(data), "-R", "-X", "stream", "--checkpoint=fast"],
            timeout=600,
        )
        # Debian keeps postgresql.conf / pg_hba.conf outside the data directory: the copy gets its own.
        (data / "postgresql.conf").write_text(
            f"port = {REPLICA_PORT}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{data}'\n"
            "hot_standby = on\nmax_connections = 100\nshared_buffers = 32MB\nfsync = off\n"
            "max_standby_streaming_delay = 5s\n"
        )
        (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        for path in (data / "postgresql.conf", data / "pg_hba.conf"):
            if os.geteuid() == 0:
                shutil.chown(path, OS_USER, OS_USER)
        if os.geteuid() == 0:
            log.touch()
            shutil.chown(log, OS_USER, OS_USER)
        _as_postgres([_pg_bin("pg_ctl", version), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"])
        _wait_listening("127.0.0.1", REPLICA_PORT, "the replica", log)
        return "127.0.0.1", REPLICA_PORT


def wait_replayed(primary_cursor, replica_cursor, timeout: float = 10) -> None:
    """Until the replica has replayed everything the primary had written when called."""
    primary_cursor.execute("SELECT pg_current_wal_lsn()")
    target = primary_cursor.fetchone()[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replica_cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
        if replica_cursor.fetchone()[0]:
            return
        time.sleep(0.02)
    raise InfraError(f"the replica did not replay up to {target} within {timeout} s")
