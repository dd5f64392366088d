-- 0009: a tenant's settings (reservation policy, free-text lines, the
-- shop's WhatsApp number, ...) as one JSON document; fields it lacks take
-- their defaults, so adding a setting needs no migration.

ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
