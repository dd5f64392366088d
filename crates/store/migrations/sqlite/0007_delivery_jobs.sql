-- 0007: a delivery is its own job. Workers claim due deliveries straight
-- from webhook_deliveries (one row per delivery instead of a delivery and a
-- job); webhook.deliver jobs become columns of their deliveries.
--   run_at          when to send it next; NULL once it succeeded or died
--   retrying_since  when its maximum age started (made, or retried by hand)
--   failures        failed attempts since then (the backoff's exponent)
--   claimed_by, claim, claimed_until   the worker holding it, as for jobs

ALTER TABLE webhook_deliveries ADD COLUMN run_at INTEGER;
ALTER TABLE webhook_deliveries ADD COLUMN retrying_since INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_deliveries ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN claim TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN claimed_until INTEGER;

UPDATE webhook_deliveries SET retrying_since = created_at,
       run_at = CASE WHEN status IN ('pending', 'failed') THEN updated_at END;

UPDATE webhook_deliveries
   SET run_at = j.run_at, retrying_since = j.created_at, failures = j.attempts,
       claimed_by = j.claimed_by, claim = j.claim, claimed_until = j.claimed_until
  FROM jobs j
 WHERE j.tenant_id = webhook_deliveries.tenant_id AND j.key = webhook_deliveries.id
   AND j.kind = 'webhook.deliver' AND j.status = 'queued';

DELETE FROM jobs WHERE kind = 'webhook.deliver';

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (run_at) WHERE run_at IS NOT NULL;
