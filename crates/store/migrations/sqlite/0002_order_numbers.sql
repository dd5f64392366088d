-- 0002: each tenant's order-number counter. Stores take numbers from it a
-- block at a time, so two processes on one file never hand out the same
-- number (before, each read the highest number stored and counted on).

ALTER TABLE tenants ADD COLUMN order_numbers_taken INTEGER NOT NULL DEFAULT 0 CHECK (order_numbers_taken >= 0);

UPDATE tenants SET order_numbers_taken =
    (SELECT COALESCE(MAX(reference_seq), 0) FROM orders WHERE orders.tenant_id = tenants.id);
