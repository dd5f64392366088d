-- 0011: a payment's transaction id (the payer's or the provider's
-- reference) is recorded once per tenant. The payment itself lives in its
-- order's body; this table only claims the id for it.

CREATE TABLE payment_transactions (
    tenant_id      TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    payment_id     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, transaction_id)
) STRICT;
