"""Back office: the progress of a monthly invoice run on the job queue. The run page
includes this fragment and polls it with htmx every 2 s while the run is queued or running
(staff may read it, as they read the run page)."""

from __future__ import annotations

from flask import abort

from citoyens.admin.views import bp
from citoyens.billing import tasks as billing_tasks
from citoyens.core.models import JOB_RUN_STATUSES, JobRun
from citoyens.extensions import db
from citoyens.web import render

MAX_ID = 2**31 - 1


@bp.get("/facturation/emissions/<int:run_id>")
def billing_run_status(run_id: int):
    run = db.session.get(JobRun, run_id) if run_id <= MAX_ID else None
    if run is None or run.kind != billing_tasks.INVOICE_RUN:
        abort(404)
    # htmx polls the fragment (the "status" block); opened directly, it is a page.
    return render("admin/billing/run_status.html", block="status", run=run, **status_context())


def status_context() -> dict:
    """What the run-status fragment needs besides the run."""
    return {"run_progress": billing_tasks.progress_of, "run_statuses": JOB_RUN_STATUSES}
