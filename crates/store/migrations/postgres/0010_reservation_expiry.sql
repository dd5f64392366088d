-- 0010: finding pending orders whose stock reservation has lapsed. The
-- time lives in the order's body (`reserved_until`, RFC 3339 in UTC with
-- milliseconds, so byte order is time order); this partial index holds
-- only the pending orders that have one.

CREATE INDEX orders_reserved_until
    ON orders (((body ->> 'reserved_until') COLLATE "C"))
    WHERE status = 'pending' AND body ? 'reserved_until';
