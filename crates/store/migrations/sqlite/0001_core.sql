-- 0001: the core of ordo on SQLite: tenants, API keys, orders, their
-- external identifiers, the timeline, and idempotency keys.
--
-- Every table is keyed by tenant first (tenants themselves excepted), so the
-- same schema can later be spread over machines by tenant. Times are
-- milliseconds since the Unix epoch; money is integer minor units.

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
    id           TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'vendor', 'viewer', 'integration')),
    hint         TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE UNIQUE INDEX api_keys_secret ON api_keys (tenant_id, secret_hash);

-- An order: the filterable facts as columns, the whole order as JSON in
-- `body`, and the order as the API shows it in `api` (rendered by version
-- `api_version` of the renderer; older renderings are redone when read).
-- All are written from one value in one statement, so they cannot disagree.
CREATE TABLE orders (
    tenant_id           TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    reference           TEXT    NOT NULL,
    reference_seq       INTEGER NOT NULL,
    status              TEXT    NOT NULL,
    payment_status      TEXT    NOT NULL,
    fulfillment_status  TEXT    NOT NULL,
    stage               TEXT    NOT NULL,
    currency            TEXT    NOT NULL,
    buyer_name          TEXT,
    buyer_phone         TEXT,
    buyer_email         TEXT,
    buyer_channel_id    TEXT,
    channel             TEXT    NOT NULL,
    created_by          TEXT    NOT NULL,
    batch_id            TEXT,
    total               INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    body                TEXT    NOT NULL,
    api                 BLOB    NOT NULL,
    api_version         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- Ids are time-ordered, so (tenant_id, id) is also the creation order.
-- A reference is the tenant's order number, permuted (see the domain's
-- `OrderReference`): the number is what is indexed, and it only grows.
CREATE UNIQUE INDEX orders_reference ON orders (tenant_id, reference_seq);
CREATE INDEX orders_status ON orders (tenant_id, status, id);
CREATE INDEX orders_payment_status ON orders (tenant_id, payment_status, id);
CREATE INDEX orders_fulfillment_status ON orders (tenant_id, fulfillment_status, id);
CREATE INDEX orders_stage ON orders (tenant_id, stage, id);
CREATE INDEX orders_channel ON orders (tenant_id, channel, id);
CREATE INDEX orders_created_by ON orders (tenant_id, created_by, id);
CREATE INDEX orders_updated_at ON orders (tenant_id, updated_at, id);
CREATE INDEX orders_total ON orders (tenant_id, total, id);
CREATE INDEX orders_buyer_phone ON orders (tenant_id, buyer_phone, id) WHERE buyer_phone IS NOT NULL;
CREATE INDEX orders_buyer_email ON orders (tenant_id, buyer_email, id) WHERE buyer_email IS NOT NULL;
CREATE INDEX orders_buyer_channel_id ON orders (tenant_id, buyer_channel_id, id) WHERE buyer_channel_id IS NOT NULL;
CREATE INDEX orders_batch ON orders (tenant_id, batch_id, id) WHERE batch_id IS NOT NULL;

-- Namespaced identifiers from other systems (seed 003), unique per tenant.
CREATE TABLE order_external_ids (
    tenant_id  TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    value      TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, namespace, value)
) STRICT;

CREATE INDEX order_external_ids_order ON order_external_ids (tenant_id, order_id);

-- The timeline: one row per change, numbered per order.
CREATE TABLE order_events (
    tenant_id  TEXT    NOT NULL,
    order_id   TEXT    NOT NULL,
    sequence   INTEGER NOT NULL,
    id         TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, order_id, sequence)
) STRICT;

-- Stripe-style idempotency keys: the request's fingerprint and the response
-- to replay. Kept at least 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id    TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    fingerprint  BLOB    NOT NULL,
    status       INTEGER NOT NULL,
    body         BLOB    NOT NULL,
    order_id     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
) STRICT;

CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);
