-- 0018: the people who sign in to the admin pages, their sessions, and
-- each tenant's signing keys (the buyer's order links).
--   users           one per email address in a tenant; the password as an
--                   argon2id PHC string; disabled users cannot sign in
--   admin_sessions  a signed-in browser: the SHA-256 of its cookie, its
--                   form token (CSRF), and when it expires (idle or not)
--   tenant_secrets  random keys by name, made the first time one is needed

CREATE TABLE users (
    tenant_id      text    NOT NULL REFERENCES tenants (id),
    id             text    NOT NULL,
    email          text    NOT NULL,
    name           text    NOT NULL,
    role           text    NOT NULL CHECK (role IN ('owner', 'admin', 'vendor', 'viewer')),
    password_hash  text    NOT NULL,
    created_at     bigint  NOT NULL,
    disabled_at    bigint,
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX users_email ON users (tenant_id, email);

CREATE TABLE admin_sessions (
    tenant_id   text    NOT NULL,
    token_hash  bytea   NOT NULL,
    user_id     text    NOT NULL,
    csrf        text    NOT NULL,
    created_at  bigint  NOT NULL,
    seen_at     bigint  NOT NULL,
    expires_at  bigint  NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE INDEX admin_sessions_user ON admin_sessions (tenant_id, user_id);

CREATE TABLE tenant_secrets (
    tenant_id   text    NOT NULL REFERENCES tenants (id),
    name        text    NOT NULL,
    value       bytea   NOT NULL,
    created_at  bigint  NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
