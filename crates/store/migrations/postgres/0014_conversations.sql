-- 0014: what the chatbot is waiting on from each buyer (the question it
-- asked, as JSON), by the buyer's channel id.

CREATE TABLE conversations (
    tenant_id  text COLLATE "C" NOT NULL,
    channel_id text COLLATE "C" NOT NULL,
    state      text NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, channel_id)
);
