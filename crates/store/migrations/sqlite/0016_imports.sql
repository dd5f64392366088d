-- 0016: imports. A file of orders or products read in the background:
-- the import as JSON (what it reads, how, and how far it got), its state
-- and the lease of the node running it beside it for claiming, and the
-- problems found, each tied to a line of the file.

CREATE TABLE imports (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    -- queued, running, succeeded or failed.
    state         TEXT NOT NULL,
    body          TEXT NOT NULL,
    -- The run's claim and until when it holds; NULL when no node has it.
    claim         TEXT,
    claimed_until INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE INDEX imports_to_run ON imports (created_at) WHERE state IN ('queued', 'running');

CREATE TABLE import_errors (
    tenant_id TEXT NOT NULL,
    import_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    line      INTEGER NOT NULL,
    -- The order's external id (namespace:value) when it could be read.
    order_key TEXT,
    field     TEXT NOT NULL,
    value     TEXT,
    reason    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, import_id, seq)
) STRICT;
