-- 0012: the webhooks a tenant's payment provider sent, by the provider's
-- event id, so a repeated delivery is answered without being applied
-- again (the ledger would ignore it anyway: an ended entry never moves).

CREATE TABLE provider_events (
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
) STRICT;
