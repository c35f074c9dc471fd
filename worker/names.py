"""Every name herald gives to something that outlives a process: Celery task names and the
Redis keys it keeps outside the broker (all in the Redis of `worker.redis_client`).

Queued messages, beat schedules and live keys hold these strings, so a value never changes once
released: rename the constant, never the string. Task names end in `_TASK` (tests/test_names.py
checks them against the tasks the Celery app registers); keys end in `_KEY`, and prefixes, to
which `:` and the rest of the key are appended, in `_KEY_PREFIX`.
"""

SEND_JOB_TASK = "herald.send_job"
APPLY_PUSH_TASK = "herald.apply_push"
"""One stored push applied alone (the fallback of a batch; kept for messages already queued)."""
APPLY_PUSHES_TASK = "herald.apply_pushes"
"""The stored pushes not applied yet, applied in batches until none is left (the doorbell's)."""
RELEASE_DUE_TASK = "herald.release_due"
SWEEP_TASK = "herald.sweep"
POLL_BALANCES_TASK = "herald.poll_balances"
POLL_FIVEC_REPORTS_TASK = "herald.poll_fivec_reports"
LIVENESS_TASK = "herald.liveness"
"""A worker's probe of itself, sent to its own queue (`worker.liveness`)."""

LIMIT_KEY_PREFIX = "herald:limit"
"""The vendors' rules of one product (`worker.limits.Keys`): minute, day and bucket keys."""
BREAKER_KEY_PREFIX = "herald:breaker"
"""An open circuit breaker of one vendor product (`worker.breaker`), with its TTL."""
CHUANGRUI_REPORT_SEEN_KEY_PREFIX = "herald:seen:chuangrui-report"
"""A Chuangrui report push's signature (by its login name) already seen: the replay guard."""
BALANCE_POLL_ONCE_KEY = "herald:once:poll-balances"
"""Set for one balance interval by the poll that runs in it, so the fleet polls once."""
FIVEC_REPORT_POLL_LOCK_KEY = "herald:lock:poll:fivec-reports"
"""The lock of the one 5C report poll that may run at a time."""
WORKER_HEARTBEAT_KEY_PREFIX = "herald:heartbeat:worker"
"""A worker's last proof that it consumes (`worker.liveness`), by hostname, with a TTL."""
BEAT_HEARTBEAT_KEY = "herald:heartbeat:beat"
"""When beat last ticked (`worker.health`), with a TTL: `/readyz` reads it."""
FIVEC_LAST_POLL_KEY = "herald:last-poll:fivec-reports"
"""When the last 5C report poll answered (POSIX seconds): the report-poll lag metric."""
RELEASE_DUE_LOCK_KEY = "herald:once:release-due"
"""Set for one release interval by the worker that releases due recipients in it."""
PUSH_DOORBELL_KEY = "herald:once:apply-pushes"
"""Set by the API request that sent an `apply_pushes` task, for a short hold
(`worker.push_doorbell`): the pushes stored meanwhile ride on that task."""
