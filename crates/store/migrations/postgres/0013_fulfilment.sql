-- 0013: shipments and returns. They live in their order's body; this
-- table only says which order a shipment id belongs to, so that
-- GET /v1/shipments/{id} finds it.

CREATE TABLE order_shipments (
    tenant_id text COLLATE "C" NOT NULL,
    id        text COLLATE "C" NOT NULL,
    order_id  text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- A return received back into stock is a movement of its own kind.
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind_check
    CHECK (kind IN ('adjustment', 'reservation', 'release', 'deduction', 'restock'));
