"""A short soak: ~300 mixed jobs on 4 worker subprocesses (2 forking, 2 simple) while workers are
SIGKILLed (and restarted) and Redis loses this run's keys; every job must end in a final status
and SQL must reconcile with RQ. ``bench/soak.py`` runs the long one with a real Redis restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from .soak_driver import Soak, describe
from .support.reliability import reliability_env


@pytest.mark.slow
def test_short_soak_ends_every_job_and_reconciles_sql_with_rq(database_url, redis_url, tmp_path: Path):
    with reliability_env(database_url, redis_url, tmp_path) as env:
        env.start(CHILDREN_IN_FLIGHT=4, MAX_RECOVERIES=5)
        soak = Soak(env, 300, kills=4, redis_loss_at=0.4, progress=print)

        # no total time to meet (the machine may be busy with other work): only a soak in which no
        # job ends for stall_seconds is stuck; timeout is a backstop
        result = soak.run(timeout=600, stall_seconds=45)

        print(describe(result))
        assert result.drained, f"{describe(result)}\n{env.worker_logs()}"
        assert result.problems == [], describe(result)
        assert (result.kills, result.redis_losses) == (4, 1)
        assert 280 <= result.jobs <= 320
        assert set(result.statuses) <= {"completed", "failed", "stopped", "cancelled"}
        assert result.by_kind["fail"] == {"failed": result.kinds["fail"]}
        assert result.by_kind["resume"]["completed"] >= 1
