-- 0008: the catalog. A product is one sellable thing, named by a SKU unique
-- in its tenant; its stock is two counters, on hand and reserved (held for
-- open orders), and the database itself refuses a row where more is
-- reserved than is on hand: no code path can oversell.

CREATE TABLE products (
    tenant_id    TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    sku          TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    description  TEXT,
    currency     TEXT    NOT NULL,
    price        BIGINT  NOT NULL CHECK (price >= 0),
    attributes   TEXT    NOT NULL,   -- JSON: name -> the values a line may choose
    variant_of   TEXT,
    image_url    TEXT,
    active       BOOLEAN NOT NULL,
    track_stock  BOOLEAN NOT NULL,
    on_hand      BIGINT  NOT NULL,
    reserved     BIGINT  NOT NULL,
    version      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    archived_at  BIGINT,
    PRIMARY KEY (tenant_id, id),
    CHECK (reserved >= 0 AND reserved <= on_hand)
);

CREATE UNIQUE INDEX products_sku ON products (tenant_id, sku);

-- Every change to a product's stock, with the counters after it.
CREATE TABLE stock_movements (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    product_id       TEXT    NOT NULL,
    sku              TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('adjustment', 'reservation', 'release', 'deduction')),
    on_hand_change   BIGINT  NOT NULL,
    reserved_change  BIGINT  NOT NULL,
    on_hand          BIGINT  NOT NULL,
    reserved         BIGINT  NOT NULL,
    reason           TEXT,
    order_id         TEXT,
    actor            TEXT    NOT NULL,   -- JSON, as on order events
    at               BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX stock_movements_product ON stock_movements (tenant_id, product_id, id);
