"""A private ``redis-server`` for the benchmarks that restart Redis or flood it, so that nobody
else's Redis (the shared one on 6379) is disturbed: no persistence, so a restart loses all data,
as a Redis restart without persistence does in production."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError


class RedisServer:
    """``redis-server --port <port> --save "" --appendonly no`` as a child process."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"redis-{port}-"))
        self.restarts = 0

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        probe = Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            probe.ping()
            raise SystemExit(f"port {self.port} already has a Redis: pick another with --redis-port")
        except RedisError:
            pass
        finally:
            probe.close()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            cwd=self._dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL the server (all its data is gone: nothing is persisted)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self, down_seconds: float = 1.0) -> float:
        """Kill the server, leave it down ``down_seconds``, start it again empty; return the
        seconds it was unreachable."""
        began = time.monotonic()
        self.kill()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1
        return time.monotonic() - began

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)
