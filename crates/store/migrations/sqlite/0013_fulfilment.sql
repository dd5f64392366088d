-- 0013: shipments and returns. They live in their order's body; this
-- table only says which order a shipment id belongs to, so that
-- GET /v1/shipments/{id} finds it.

CREATE TABLE order_shipments (
    tenant_id TEXT NOT NULL,
    id        TEXT NOT NULL,
    order_id  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;

-- A return received back into stock is a movement of its own kind,
-- 'restock'. SQLite cannot change a CHECK constraint: the table is made
-- again with it.
CREATE TABLE stock_movements_0013 (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    product_id       TEXT    NOT NULL,
    sku              TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('adjustment', 'reservation', 'release', 'deduction', 'restock')),
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

INSERT INTO stock_movements_0013 SELECT * FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_0013 RENAME TO stock_movements;
CREATE INDEX stock_movements_product ON stock_movements (tenant_id, product_id, id);
