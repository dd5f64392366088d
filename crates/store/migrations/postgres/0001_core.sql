-- 0001: the core of ordo on PostgreSQL: tenants, API keys, orders, their
-- external identifiers, the timeline, and idempotency keys.
--
-- The same facts as the SQLite schema, in PostgreSQL's idiom: jsonb for
-- documents, bytea for bytes, identifiers compared byte by byte (COLLATE
-- "C", so time-ordered ids sort by time whatever the database's locale).
-- Times are milliseconds since the Unix epoch in bigint, the form every
-- cursor and comparison in ordo uses; money is integer minor units.
--
-- The tenant id leads every primary key and index of tenant data, so these
-- tables can be distributed by tenant_id (Citus: create_distributed_table)
-- without change; `tenants` itself would be a reference table.

CREATE TABLE tenants (
    id                  text   COLLATE "C" PRIMARY KEY,
    slug                text   NOT NULL UNIQUE,
    name                text   NOT NULL,
    created_at          bigint NOT NULL,
    -- The highest order number handed out to a node (nodes take blocks).
    order_numbers_taken bigint NOT NULL DEFAULT 0 CHECK (order_numbers_taken >= 0)
);

CREATE TABLE api_keys (
    tenant_id    text   COLLATE "C" NOT NULL REFERENCES tenants (id),
    id           text   COLLATE "C" NOT NULL,
    name         text   NOT NULL,
    role         text   NOT NULL CHECK (role IN ('owner', 'admin', 'vendor', 'viewer', 'integration')),
    hint         text   NOT NULL,
    secret_hash  bytea  NOT NULL,
    created_at   bigint NOT NULL,
    revoked_at   bigint,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX api_keys_secret ON api_keys (tenant_id, secret_hash);

-- An order: the filterable facts as columns, the whole order in `body`, and
-- the order as the API shows it in `api` (rendered by version `api_version`
-- of the renderer; older renderings are redone when read). All are written
-- from one value in one statement, so they cannot disagree.
CREATE TABLE orders (
    tenant_id           text    COLLATE "C" NOT NULL,
    id                  text    COLLATE "C" NOT NULL,
    reference           text    NOT NULL,
    reference_seq       bigint  NOT NULL,
    status              text    NOT NULL,
    payment_status      text    NOT NULL,
    fulfillment_status  text    NOT NULL,
    stage               text    NOT NULL,
    currency            text    NOT NULL,
    buyer_name          text,
    buyer_phone         text,
    buyer_email         text,
    buyer_channel_id    text,
    channel             text    NOT NULL,
    created_by          text    COLLATE "C" NOT NULL,
    batch_id            text,
    total               bigint  NOT NULL,
    version             bigint  NOT NULL,
    created_at          bigint  NOT NULL,
    updated_at          bigint  NOT NULL,
    body                jsonb   NOT NULL,
    api                 bytea   NOT NULL,
    api_version         integer NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Ids are time-ordered, so (tenant_id, id) is also the creation order.
-- A reference is the tenant's order number, permuted (see the domain's
-- `OrderReference`): the number is what is indexed.
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
    tenant_id  text COLLATE "C" NOT NULL,
    namespace  text NOT NULL,
    value      text NOT NULL,
    order_id   text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, namespace, value)
);

CREATE INDEX order_external_ids_order ON order_external_ids (tenant_id, order_id);

-- The timeline: one row per change, numbered per order. `json`, not
-- `jsonb`: an event's data is kept byte for byte, as written.
CREATE TABLE order_events (
    tenant_id  text   COLLATE "C" NOT NULL,
    order_id   text   COLLATE "C" NOT NULL,
    sequence   bigint NOT NULL,
    id         text   COLLATE "C" NOT NULL,
    type       text   NOT NULL,
    actor      json   NOT NULL,
    at         bigint NOT NULL,
    data       json   NOT NULL,
    PRIMARY KEY (tenant_id, order_id, sequence)
);

-- Stripe-style idempotency keys: the request's fingerprint and the response
-- to replay. Kept at least 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id    text     COLLATE "C" NOT NULL,
    key          text     NOT NULL,
    fingerprint  bytea    NOT NULL,
    status       smallint NOT NULL,
    body         bytea    NOT NULL,
    order_id     text     COLLATE "C" NOT NULL,
    created_at   bigint   NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE INDEX idempotency_keys_age ON idempotency_keys (tenant_id, created_at);
