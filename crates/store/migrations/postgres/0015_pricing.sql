-- 0015: pricing. Products get the tax class they pay and what a unit
-- weighs; promotions are kept with how many orders used them, and each
-- use (by order and buyer) for the per-buyer limits.

ALTER TABLE products ADD COLUMN tax_class text COLLATE "C" NOT NULL DEFAULT 'standard';
ALTER TABLE products ADD COLUMN weight_grams bigint NOT NULL DEFAULT 0;

CREATE TABLE promotions (
    tenant_id  text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    -- Upper case; NULL for a promotion that applies by itself.
    code       text COLLATE "C",
    active     boolean NOT NULL,
    -- The promotion as JSON (all but uses).
    body       text NOT NULL,
    uses       bigint NOT NULL DEFAULT 0,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX promotions_by_code ON promotions (tenant_id, code) WHERE code IS NOT NULL;

CREATE TABLE promotion_uses (
    tenant_id    text COLLATE "C" NOT NULL,
    promotion_id text COLLATE "C" NOT NULL,
    order_id     text COLLATE "C" NOT NULL,
    -- Who used it (a phone, an email or a channel id), for per-buyer limits.
    buyer        text COLLATE "C",
    at           bigint NOT NULL,
    PRIMARY KEY (tenant_id, promotion_id, order_id)
);
CREATE INDEX promotion_uses_by_buyer ON promotion_uses (tenant_id, buyer, promotion_id);
