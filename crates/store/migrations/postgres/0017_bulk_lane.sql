-- 0017: the events an import wrote, and their webhook deliveries, go in a
-- lane of their own: workers claim due live deliveries first, so a large
-- import's deliveries never hold up live traffic's.
--   order_events.bulk         true when an import's write made the event
--   webhook_deliveries.bulk   its event's bulk, copied at fan-out

ALTER TABLE order_events ADD COLUMN bulk boolean NOT NULL DEFAULT false;
ALTER TABLE webhook_deliveries ADD COLUMN bulk boolean NOT NULL DEFAULT false;

DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (bulk, run_at) WHERE run_at IS NOT NULL;
