"""NetSuite (ERP) emulator: REST record service, SuiteQL, async jobs with idempotency keys."""

from __future__ import annotations

from sandbox.core.dialects import Dialect, Route
from sandbox.netsuite import jobs, views

_RECORD = "/services/rest/record/v1/{record_type:[A-Za-z]+}"
_JOB = "/services/rest/async/v1/job/{job}"

DIALECT = Dialect(
    system="netsuite",
    prefix="/netsuite",
    routes=[
        Route(
            "POST",
            "/services/rest/auth/oauth2/v1/token",
            views.oauth2_token,
            auth=False,
            counted=False,
        ),
        Route("GET", _RECORD, views.record_list),
        Route("POST", _RECORD, views.record_create),
        Route("GET", _RECORD + "/{record_id:\\d+}", views.record_get),
        Route("PATCH", _RECORD + "/{record_id:\\d+}", views.record_patch),
        Route("DELETE", _RECORD + "/{record_id:\\d+}", views.record_delete),
        Route("GET", _RECORD + "/eid:{external_id}", views.record_get_by_external_id),
        Route("PUT", _RECORD + "/eid:{external_id}", views.record_upsert),
        Route("POST", "/services/rest/query/v1/suiteql", views.suiteql),
        Route("GET", _JOB, jobs.job_get),
        Route("GET", _JOB + "/task", jobs.job_tasks),
        Route("GET", _JOB + "/task/{task}", jobs.job_task),
        Route("GET", _JOB + "/task/{task}/result", jobs.job_task_result),
    ],
    render_error=views.render_error,
    authenticate=views.authenticate,
    credentials=views.credentials,
    # A NetSuite account on shared service without SuiteCloud Plus allows 5 concurrent
    # web-services requests; over it the request is refused with 429.
    default_faults={"concurrency_limit": 5},
)
