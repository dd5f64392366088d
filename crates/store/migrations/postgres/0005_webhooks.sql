-- 0005: webhook endpoints: where a tenant's events are sent, with the
-- secret that signs them (kept as is: signing needs it).

CREATE TABLE webhook_endpoints (
    tenant_id                   text     COLLATE "C" NOT NULL,
    id                          text     COLLATE "C" NOT NULL,
    url                         text     NOT NULL,
    description                 text,
    -- Event types sent; empty: every type.
    event_types                 text[]   NOT NULL,
    active                      boolean  NOT NULL,
    secret                      text     NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  bigint,
    created_at                  bigint   NOT NULL,
    updated_at                  bigint   NOT NULL,
    disabled_at                 bigint,
    disabled_reason             text,
    PRIMARY KEY (tenant_id, id)
);
