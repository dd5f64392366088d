-- 0002: background work. A job is claimed by one node at a time for a
-- lease (FOR UPDATE SKIP LOCKED, so nodes polling together take different
-- jobs and never wait for each other); a node that dies lets its lease run
-- out and another node claims the job again. Keyed by tenant first (''
-- for work of the whole installation); a job's key is unique in its
-- tenant, so scheduling the same work twice schedules it once.

CREATE TABLE jobs (
    tenant_id      text    COLLATE "C" NOT NULL,
    key            text    NOT NULL,
    kind           text    NOT NULL,
    payload        jsonb   NOT NULL,
    run_at         bigint  NOT NULL,
    -- 'queued' (waiting or claimed) or 'dead' (gave up; kept for operators).
    status         text    NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'dead')),
    created_at     bigint  NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    claimed_by     text,
    claim          text,
    claimed_until  bigint,
    last_error     text,
    PRIMARY KEY (tenant_id, key)
);

-- Due work is found by time across tenants: the one index not led by the
-- tenant (see docs/SCALING.md).
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'queued';
