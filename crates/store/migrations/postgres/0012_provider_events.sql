-- 0012: the webhooks a tenant's payment provider sent, by the provider's
-- event id, so a repeated delivery is answered without being applied
-- again (the ledger would ignore it anyway: an ended entry never moves).

CREATE TABLE provider_events (
    tenant_id   text COLLATE "C" NOT NULL,
    event_id    text NOT NULL,
    order_id    text COLLATE "C" NOT NULL,
    outcome     text NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);
