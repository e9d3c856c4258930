"""How to apply, as the shells hand it to the engine: its own module, so that a command that
only parses its options (and then finds nothing to change) never imports the Applier."""

from __future__ import annotations


from syncer.core.record import Record, record


@record
class ApplyOptions(Record):
    """How to apply: parallelism, timeouts, and whether volumes of removed containers go too."""

    parallelism: int = 4
    health_timeout: float = 120.0
    stop_timeout: int = 10
    prune_volumes: bool = False
    settle: float = 0.0  # without a healthcheck: how long a new container must stay up
    job_timeout: float = 600.0  # how long a job may run before its deployment fails
