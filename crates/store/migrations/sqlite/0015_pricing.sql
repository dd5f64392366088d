-- 0015: pricing. Products get the tax class they pay and what a unit
-- weighs; promotions are kept with how many orders used them, and each
-- use (by order and buyer) for the per-buyer limits.

ALTER TABLE products ADD COLUMN tax_class TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE products ADD COLUMN weight_grams INTEGER NOT NULL DEFAULT 0;

CREATE TABLE promotions (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    -- Upper case; NULL for a promotion that applies by itself.
    code       TEXT,
    active     INTEGER NOT NULL,
    -- The promotion as JSON (all but uses).
    body       TEXT NOT NULL,
    uses       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) STRICT;
CREATE UNIQUE INDEX promotions_by_code ON promotions (tenant_id, code) WHERE code IS NOT NULL;

CREATE TABLE promotion_uses (
    tenant_id    TEXT NOT NULL,
    promotion_id TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    -- Who used it (a phone, an email or a channel id), for per-buyer limits.
    buyer        TEXT,
    at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, promotion_id, order_id)
) STRICT;
CREATE INDEX promotion_uses_by_buyer ON promotion_uses (tenant_id, buyer, promotion_id);
