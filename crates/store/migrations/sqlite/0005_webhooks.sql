-- 0005: webhook endpoints: where a tenant's events are sent, with the
-- secret that signs them (kept as is: signing needs it).

CREATE TABLE webhook_endpoints (
    tenant_id                   TEXT    NOT NULL,
    id                          TEXT    NOT NULL,
    url                         TEXT    NOT NULL,
    description                 TEXT,
    -- A JSON array of event types; empty: every type.
    event_types                 TEXT    NOT NULL,
    active                      INTEGER NOT NULL CHECK (active IN (0, 1)),
    secret                      TEXT    NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    disabled_at                 INTEGER,
    disabled_reason             TEXT,
    PRIMARY KEY (tenant_id, id)
) STRICT;
