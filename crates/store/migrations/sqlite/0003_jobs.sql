-- 0003: background work. A job is claimed by one process at a time for a
-- lease; a process that dies lets its lease run out and the job is claimed
-- again. Keyed by tenant first ('' for work of the whole installation); a
-- job's key is unique in its tenant, so scheduling the same work twice
-- schedules it once.

CREATE TABLE jobs (
    tenant_id      TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    run_at         INTEGER NOT NULL,
    -- 'queued' (waiting or claimed) or 'dead' (gave up; kept for operators).
    status         TEXT    NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'dead')),
    created_at     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    claim          TEXT,
    claimed_until  INTEGER,
    last_error     TEXT,
    PRIMARY KEY (tenant_id, key)
) STRICT;

-- Due work is found by time across tenants: the one index not led by the
-- tenant (see docs/SCALING.md).
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'queued';
