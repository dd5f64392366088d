-- 0016: imports. A file of orders or products read in the background:
-- the import as JSON (what it reads, how, and how far it got), its state
-- and the lease of the node running it beside it for claiming, and the
-- problems found, each tied to a line of the file.

CREATE TABLE imports (
    tenant_id     text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    -- queued, running, succeeded or failed.
    state         text COLLATE "C" NOT NULL,
    body          text NOT NULL,
    -- The run's claim and until when it holds; NULL when no node has it.
    claim         text COLLATE "C",
    claimed_until bigint,
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX imports_to_run ON imports (created_at) WHERE state IN ('queued', 'running');

CREATE TABLE import_errors (
    tenant_id text COLLATE "C" NOT NULL,
    import_id text COLLATE "C" NOT NULL,
    seq       bigint NOT NULL,
    line      bigint NOT NULL,
    -- The order's external id (namespace:value) when it could be read.
    order_key text,
    field     text NOT NULL,
    value     text,
    reason    text NOT NULL,
    PRIMARY KEY (tenant_id, import_id, seq)
);
