-- 0006: webhook deliveries. Each event a subscribed endpoint wants becomes
-- a delivery (what the API lists) and a job (what the workers claim), made
-- together by the fan-out pass, which walks each tenant's feed from its
-- cursor; nothing is ever dropped, only marked.

CREATE TABLE webhook_deliveries (
    tenant_id         TEXT    NOT NULL,
    id                TEXT    NOT NULL,
    endpoint_id       TEXT    NOT NULL,
    event_id          TEXT    NOT NULL,
    order_id          TEXT    NOT NULL,
    event_sequence    INTEGER NOT NULL,
    feed_seq          INTEGER NOT NULL,
    event_type        TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_status_code  INTEGER,
    last_error        TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);

-- How far each tenant's feed has been fanned out to its endpoints.
CREATE TABLE feed_cursors (
    tenant_id  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;

-- Every attempt at a delivery: what the receiver answered, how fast.
CREATE TABLE webhook_attempts (
    tenant_id         TEXT    NOT NULL,
    delivery_id       TEXT    NOT NULL,
    number            INTEGER NOT NULL,
    at                INTEGER NOT NULL,
    status_code       INTEGER,
    latency_ms        INTEGER NOT NULL,
    error             TEXT,
    response_excerpt  TEXT,
    PRIMARY KEY (tenant_id, delivery_id, number)
) STRICT;
