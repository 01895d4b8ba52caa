"""Simulated worker deaths for resume tests (the real SIGKILL is in tests/flows)."""

from __future__ import annotations

from studio.services.jobs import JobContext


class WorkerKilled(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler in the job code catches it."""


class DyingContext(JobContext):
    """Dies inside the transaction of the Nth checkpoint: that chunk's files may be written,
    its rows are not."""

    def __init__(self, job, die_at: int):
        super().__init__(job)
        self.calls, self.die_at = 0, die_at

    def save_checkpoint(self, checkpoint, **kwargs):
        self.calls += 1
        if self.calls == self.die_at:
            raise WorkerKilled()
        super().save_checkpoint(checkpoint, **kwargs)
