-- 0014: what the chatbot is waiting on from each buyer (the question it
-- asked, as JSON), by the buyer's channel id.

CREATE TABLE conversations (
    tenant_id  TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel_id)
) STRICT;
