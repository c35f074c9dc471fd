"""The job store: SQLModel tables, and the only code that changes a delivery's status.

Works on SQLite (WAL, busy timeout) and PostgreSQL; all times are stored as UTC. Each module
holds one part; everything callers use is importable from here:

- `models`: the tables; `db`: engines and sessions; `migrate`: schema migrations (Alembic,
  imported only where the schema is brought up to date: `from worker.store import migrate`)
- `jobs`: storing and reading jobs; `counts`: a job's recipients by status
- `deliveries`: the delivery state machine
- `sweeper`: due, stale and lost deliveries; `audits`: MMS contents and their audit
- `reports`: applying a vendor's delivery report; `pushes`: stored pushes and inbound replies
- `suppressions`: the opt-out list; `balances`: vendor balances
- `api_keys`: the API keys `herald keys` made (hashes only)
- `search`: finding jobs, their counts by status and their recipients, a page at a time
"""

from worker.store.api_keys import (
    any_active_api_key,
    api_keys,
    create_api_key,
    find_api_key,
    hash_api_key,
    revoke_api_key,
)
from worker.store.audits import (
    add_mms_content,
    decide_audit,
    mms_content,
    set_content_ref,
    settle_audits,
)
from worker.store.balances import balances, record_balance
from worker.store.db import (
    commit_without_waiting_for_disk,
    get_engine,
    make_engine,
    read_scope,
    reset_engine,
    session_scope,
)
from worker.store.deliveries import (
    cancel_job,
    claim_for_sending,
    day_counts,
    ids_in,
    mark_sending,
    move_deliveries,
    queued_vendors,
)
from worker.store.jobs import (
    NewJob,
    count_error_attempt,
    create_job,
    deliveries_of,
    events_of,
    get_job,
    initial_status,
    job_by_idempotency_key,
    job_status,
    job_status_of,
    mark_enqueued,
)
from worker.store.models import (
    ApiKey,
    Delivery,
    DeliveryEvent,
    InboundMessage,
    Job,
    MmsContent,
    Suppression,
    UTCDateTime,
    VendorBalance,
    VendorPush,
    utcnow,
)
from worker.store.pushes import (
    add_inbound,
    inbound_messages,
    mark_push_applied,
    push_digest,
    record_push,
)
from worker.store.reports import ReportOutcome, apply_report
from worker.store.search import (
    JobFilter,
    JobPosition,
    find_jobs,
    recipients_page,
    status_counts_of_jobs,
)
from worker.store.suppressions import suppress, suppressed_among, suppressions, unsuppress
from worker.store.sweeper import (
    expire_stale_sending,
    release_due,
    requeue_stale_claims,
    stale_queued_jobs,
)

__all__ = [  # noqa: RUF022 (grouped by module, not sorted)
    # tables and types
    "ApiKey",
    "Delivery",
    "DeliveryEvent",
    "InboundMessage",
    "Job",
    "MmsContent",
    "Suppression",
    "UTCDateTime",
    "VendorBalance",
    "VendorPush",
    "utcnow",
    # engine, sessions and schema
    "get_engine",
    "make_engine",
    "read_scope",
    "reset_engine",
    "session_scope",
    # jobs
    "NewJob",
    "count_error_attempt",
    "create_job",
    "deliveries_of",
    "events_of",
    "get_job",
    "initial_status",
    "job_by_idempotency_key",
    "job_status",
    "job_status_of",
    "mark_enqueued",
    # finding jobs and paging their recipients
    "JobFilter",
    "JobPosition",
    "find_jobs",
    "recipients_page",
    "status_counts_of_jobs",
    # delivery status changes
    "cancel_job",
    "claim_for_sending",
    "commit_without_waiting_for_disk",
    "day_counts",
    "ids_in",
    "mark_sending",
    "move_deliveries",
    "queued_vendors",
    # the sweeper's queries
    "expire_stale_sending",
    "release_due",
    "requeue_stale_claims",
    "stale_queued_jobs",
    # MMS contents and their audit
    "add_mms_content",
    "decide_audit",
    "mms_content",
    "set_content_ref",
    "settle_audits",
    # vendor reports
    "ReportOutcome",
    "apply_report",
    # vendor pushes and inbound replies
    "add_inbound",
    "inbound_messages",
    "mark_push_applied",
    "push_digest",
    "record_push",
    # suppressions and balances
    "balances",
    "record_balance",
    "suppress",
    "suppressed_among",
    "suppressions",
    "unsuppress",
    # API keys
    "any_active_api_key",
    "api_keys",
    "create_api_key",
    "find_api_key",
    "hash_api_key",
    "revoke_api_key",
]
