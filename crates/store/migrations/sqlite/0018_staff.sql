-- 0018: the people who sign in to the admin pages, their sessions, and
-- each tenant's signing keys (the buyer's order links).
--   users           one per email address in a tenant; the password as an
--                   argon2id PHC string; disabled users cannot sign in
--   admin_sessions  a signed-in browser: the SHA-256 of its cookie, its
--                   form token (CSRF), and when it expires (idle or not)
--   tenant_secrets  random keys by name, made the first time one is needed

CREATE TABLE users (
    tenant_id      TEXT    NOT NULL REFERENCES tenants (id),
    id             TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'vendor', 'viewer')),
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    disabled_at    INTEGER,
    PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE UNIQUE INDEX users_email ON users (tenant_id, email);

CREATE TABLE admin_sessions (
    tenant_id   TEXT    NOT NULL,
    token_hash  BLOB    NOT NULL,
    user_id     TEXT    NOT NULL,
    csrf        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
) STRICT;

CREATE INDEX admin_sessions_user ON admin_sessions (tenant_id, user_id);

CREATE TABLE tenant_secrets (
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    value       BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) STRICT;
