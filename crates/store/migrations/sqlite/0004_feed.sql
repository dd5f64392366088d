-- 0004: the event feed. Every timeline event gets a feed position, handed
-- out after it is committed by one sequencer at a time, so a reader paging
-- the feed by position never skips an event that committed late. Each event
-- also keeps the order as the API showed it right after the change (what
-- webhooks and the feed deliver).

ALTER TABLE order_events ADD COLUMN feed_seq INTEGER;
ALTER TABLE order_events ADD COLUMN order_api BLOB;

CREATE UNIQUE INDEX order_events_feed ON order_events (tenant_id, feed_seq) WHERE feed_seq IS NOT NULL;
CREATE INDEX order_events_unsequenced ON order_events (tenant_id, id) WHERE feed_seq IS NULL;

-- Counters of the whole installation: 'feed' is the last feed position.
CREATE TABLE counters (
    name   TEXT    NOT NULL PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;

INSERT INTO counters (name, value) VALUES ('feed', 0);
