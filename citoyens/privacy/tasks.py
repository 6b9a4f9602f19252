"""Personal data on the job queue: building a family's archive, and the daily retention
purge (which also deletes the expired archives)."""

from __future__ import annotations

import logging

from citoyens import jobs

log = logging.getLogger("citoyens.privacy.tasks")


@jobs.task(retries=2, retry_delay=60)
def build_export_task(export_id: int) -> None:
    """Build one archive and e-mail its requester (links need a request context)."""
    from citoyens.privacy.exports import build_export
    from citoyens.reservations.closures import mail_context

    with mail_context():
        build_export(export_id)


@jobs.periodic_task(jobs.crontab(hour="2", minute="40"))
def purge_daily() -> None:
    """Every day at 02:40 UTC: the retention purges (`flask purge` does the same)."""
    from citoyens.retention import purge

    done = purge()
    log.info("retention purge: %s", done)
