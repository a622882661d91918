"""Run the example catalogue: Redis (found or started), web, two workers, scheduler.

Invoked by ``scripts/demo`` once the virtualenv is ready. Options: ``--port`` for the web
server (default 5000, or the next free port), ``--redis-port`` (default 6379).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services

ROOT = Path(__file__).resolve().parent.parent


def free_port(preferred: int) -> int:
    port = preferred
    while services.is_listening(port):
        port += 1
    return port


def stop(children: list[tuple[str, subprocess.Popen[bytes]]], grace: float = 15) -> None:
    """SIGTERM each child and wait for it (workers finish or pause their jobs); kill stragglers."""
    for _name, process in children:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for _name, process in children:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--redis-port", type=int, default=6379)
    options = parser.parse_args()

    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop as cleanly as on Ctrl+C
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    redis = services.start_redis(options.redis_port, foreground_child=True)
    if redis is not None:
        print(f"started Redis on 127.0.0.1:{options.redis_port}")
    else:
        print(f"using the Redis already running on 127.0.0.1:{options.redis_port}")

    try:
        env = dict(os.environ, FLASK_APP="example_app", EXAMPLE_REDIS_URL=f"redis://127.0.0.1:{options.redis_port}/0")
        flask = [sys.executable, "-m", "flask"]
        subprocess.run([*flask, "jobmonitor", "init-db"], cwd=ROOT, env=env, check=True)
        subprocess.run([*flask, "seed"], cwd=ROOT, env=env, check=True)

        port = free_port(options.port)
        commands = {
            "web": [*flask, "run", "--port", str(port)],
            "worker-1": [*flask, "jobmonitor", "worker"],
            "worker-2": [*flask, "jobmonitor", "worker", "--worker-class", "rq.SimpleWorker"],
            "scheduler": [*flask, "jobmonitor", "scheduler"],
        }
        for name, command in commands.items():
            # each child in its own process group, so Ctrl+C reaches them only through us, in order
            children.append((name, subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)))

        print(
            f"\n  flask-jobmonitor demo running at http://127.0.0.1:{port}/   (Ctrl+C stops everything)\n"
            "  log in as admin, manager, clerk or auditor; the password is the user name.\n"
            "  a CSV to import: example_app/sample-products.csv\n"
        )
        while all(process.poll() is None for _, process in children):
            time.sleep(0.5)
        failed = [name for name, process in children if process.poll() is not None]
        print(f"stopped because {', '.join(failed)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...")
        return 0
    finally:
        stop(children)  # web and workers first: workers need Redis to shut down cleanly
        if redis is not None:
            stop([("redis", redis)], grace=5)


if __name__ == "__main__":
    sys.exit(main())
