"""What a forking worker hands to the work horse it forks for a job, and what the horse hands back.

One object, :data:`hand_over`, lives in the worker process. The worker (process.py,
``AppWorkerMixin``) writes it just before it forks; the horse, a copy of the worker's memory,
reads its copy in the runner (runner.py) and answers through the one byte the two processes
share. Nothing else reads or writes it.

A SimpleWorker (no fork) and a worker that could not claim the job before forking hand nothing
over: the runner then claims and records the run itself.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field

from .context import RunInfo

#: What the horse says of a pre-claimed run through :attr:`HandOver.horse_outcome`: it did not
#: start the task, it started it, or the task completed and its progress is written.
HORSE_NOT_STARTED, HORSE_STARTED, HORSE_COMPLETED = 0, 1, 2


@dataclass
class HandOver:
    """Written by the worker (process.py), read by the runner (runner.py) in the work horse."""

    #: Process id of the forking worker that settles pre-claimed runs (the horse compares it with
    #: its parent: an orphaned horse records its own result).
    settling_parent_pid: int = 0
    #: Runs that a forking worker claimed before it forked (None: a claim refused). Such a run's outcome "completed" is
    #: then recorded by the worker once the horse has exited, so a small job costs the horse no
    #: database connection at all.
    preclaimed: dict[str, RunInfo | None] = field(default_factory=dict)
    #: One byte that a forking worker shares with its work horse (an anonymous shared mapping the
    #: worker makes before it forks): the horse sets it once the pre-claimed run has completed and
    #: its progress is written. The worker settles the run from this byte, not from RQ's job
    #: hash: a second RQ entry of the same job (a duplicate resubmission) that another worker
    #: dequeued and refused to run also writes "finished" to that one hash, which says nothing
    #: about this run.
    horse_outcome: mmap.mmap | None = None
    #: True while the worker (the mixin's ``perform_job``) runs the runner's after-job callbacks
    #: once RQ has closed the execution (runner.after_rq_job); outside a jobmonitor worker they
    #: run at once.
    deferred_callbacks_supported: bool = False

    def give(self, job_id: str, run: RunInfo | None, outcome: mmap.mmap) -> None:
        """The worker, before it forks: the horse will run ``run``, claimed already (None: the
        claim was refused, the horse does not run the job), and answer in ``outcome`` (reset
        here to :data:`HORSE_NOT_STARTED`)."""
        self.preclaimed[job_id] = run
        self.settling_parent_pid = os.getpid()
        outcome[0] = HORSE_NOT_STARTED
        self.horse_outcome = outcome

    def take_back(self, job_id: str) -> None:
        """The worker, after the horse exited: the claim of ``job_id`` is no longer handed over."""
        self.preclaimed.pop(job_id, None)

    def report(self, outcome: int) -> None:
        """The horse: say how far the pre-claimed run got (:data:`HORSE_STARTED`...)."""
        if self.horse_outcome is not None:
            self.horse_outcome[0] = outcome


#: The hand-over of this process (see the module docstring).
hand_over = HandOver()
