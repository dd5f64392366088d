-- 0004: the event feed. Every timeline event gets a feed position in the
-- transaction that writes it: SQLite has one writer at a time (across
-- processes too), so positions grow in commit order and a reader paging
-- the feed by position never skips an event. Each event also keeps the
-- order as the API showed it right after the change (what webhooks and the
-- feed deliver).

ALTER TABLE order_events ADD COLUMN feed_seq INTEGER;
ALTER TABLE order_events ADD COLUMN order_api BLOB;

-- Counters of the whole installation: 'feed' is the last feed position.
CREATE TABLE counters (
    name   TEXT    NOT NULL PRIMARY KEY,
    value  INTEGER NOT NULL
) STRICT;

-- Events written before this migration enter the feed in time order.
UPDATE order_events SET feed_seq = (
    SELECT n FROM (SELECT rowid AS r, row_number() OVER (ORDER BY id) AS n FROM order_events) AS numbered
     WHERE numbered.r = order_events.rowid);

INSERT INTO counters (name, value) SELECT 'feed', COALESCE(MAX(feed_seq), 0) FROM order_events;

CREATE UNIQUE INDEX order_events_feed ON order_events (tenant_id, feed_seq);
