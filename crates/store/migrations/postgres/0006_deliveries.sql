-- 0006: webhook deliveries. Each event a subscribed endpoint wants becomes
-- a delivery (what the API lists) and a job (what the workers claim), made
-- together by the fan-out pass, which walks each tenant's feed from its
-- cursor, one node at a time; nothing is ever dropped, only marked.

CREATE TABLE webhook_deliveries (
    tenant_id         text     COLLATE "C" NOT NULL,
    id                text     COLLATE "C" NOT NULL,
    endpoint_id       text     COLLATE "C" NOT NULL,
    event_id          text     COLLATE "C" NOT NULL,
    order_id          text     COLLATE "C" NOT NULL,
    event_sequence    bigint   NOT NULL,
    feed_seq          bigint   NOT NULL,
    event_type        text     NOT NULL,
    status            text     NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'dead')),
    attempts          integer  NOT NULL DEFAULT 0,
    created_at        bigint   NOT NULL,
    updated_at        bigint   NOT NULL,
    last_status_code  smallint,
    last_error        text,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);

-- How far each tenant's feed has been fanned out to its endpoints.
CREATE TABLE feed_cursors (
    tenant_id  text   COLLATE "C" NOT NULL,
    name       text   NOT NULL,
    position   bigint NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Every attempt at a delivery: what the receiver answered, how fast.
CREATE TABLE webhook_attempts (
    tenant_id         text     COLLATE "C" NOT NULL,
    delivery_id       text     COLLATE "C" NOT NULL,
    number            integer  NOT NULL,
    at                bigint   NOT NULL,
    status_code       smallint,
    latency_ms        bigint   NOT NULL,
    error             text,
    response_excerpt  text,
    PRIMARY KEY (tenant_id, delivery_id, number)
);
