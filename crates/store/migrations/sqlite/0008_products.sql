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
    price        INTEGER NOT NULL CHECK (price >= 0),
    attributes   TEXT    NOT NULL,   -- JSON: name -> the values a line may choose
    variant_of   TEXT,
    image_url    TEXT,
    active       INTEGER NOT NULL,
    track_stock  INTEGER NOT NULL,
    on_hand      INTEGER NOT NULL,
    reserved     INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    archived_at  INTEGER,
    PRIMARY KEY (tenant_id, id),
    CHECK (reserved >= 0 AND reserved <= on_hand)
) STRICT;

CREATE UNIQUE INDEX products_sku ON products (tenant_id, sku);

-- Every change to a product's stock, with the counters after it.
CREATE TABLE stock_movements (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    product_id       TEXT    NOT NULL,
    sku              TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('adjustment', 'reservation', 'release', 'deduction')),
    on_hand_change   INTEGER NOT NULL,
    reserved_change  INTEGER NOT NULL,
    on_hand          INTEGER NOT NULL,
    reserved         INTEGER NOT NULL,
    reason           TEXT,
    order_id         TEXT,
    actor            TEXT    NOT NULL,   -- JSON, as on order events
    at               INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX stock_movements_product ON stock_movements (tenant_id, product_id, id);
