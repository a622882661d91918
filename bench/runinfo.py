"""What every benchmark checks and records about the machine it runs on.

    from runinfo import cpu_model, require_empty_redis_dbs, warn_if_busy

One place for the CPU's name (``/proc/cpuinfo``), the warning printed when other processes use
the CPU before a run, and the refusal to flush Redis databases that something else uses.
"""

from __future__ import annotations

import argparse
import os

from redis import Redis

#: A load average above this before a run: the figures will be noisy (2 cores).
BUSY_LOAD = 0.7


def cpu_model() -> str:
    """The CPU's model name, or "" where ``/proc/cpuinfo`` cannot tell."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        return ""


def warn_if_busy() -> tuple[float, float, float]:
    """The load average before the run, with a warning printed when other work uses the CPU."""
    load = os.getloadavg()
    if load[0] > BUSY_LOAD:
        print(f"warning: load average {load[0]:.2f} before the run: other processes use the CPU, figures will be noisy")
    return load


def require_empty_redis_dbs(parser: argparse.ArgumentParser, redis_url: str, numbers: tuple[int, ...]) -> None:
    """Stop with a usage error when one of the Redis databases ``numbers`` holds keys: the
    benchmark flushes them, and something else uses it."""
    for number in numbers:
        keys = Redis.from_url(f"{redis_url}/{number}").dbsize()
        if keys:
            parser.error(
                f"Redis database {number} holds {keys} keys: something else uses it, and this benchmark flushes it;"
                " pick free databases with --redis-dbs"
            )
