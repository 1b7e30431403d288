-- Liaison store schema, SQLite flavour (the PostgreSQL flavour is in
-- ../postgres/0001_init.sql and must stay equivalent).
--
-- Conventions shared by both engines:
-- * timestamps are INTEGER microseconds since the Unix epoch (UTC);
-- * every tenant-owned row carries org_id, and every key and index starts with it;
-- * booleans are INTEGER 0/1 here (BOOLEAN in PostgreSQL); the Any driver cannot
--   read SQLite's BOOLEAN declared type, and the store never reads `active` back
--   (the document holds it).

-- Organisations (tenants). AUTOINCREMENT: ids of deleted organisations are never
-- reused, so a stale reference can never point at another tenant.
CREATE TABLE orgs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    slug    TEXT    NOT NULL UNIQUE,
    name    TEXT    NOT NULL,
    created INTEGER NOT NULL
);

-- API tokens: public id and SHA-256 of the secret. org_id NULL = operator token.
CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    org_id      INTEGER REFERENCES orgs (id) ON DELETE CASCADE,
    secret_hash BLOB    NOT NULL,
    created     INTEGER NOT NULL
);
CREATE INDEX tokens_org ON tokens (org_id);

-- SCIM resources. `doc` is the resource's JSON (without id, meta, members,
-- groups, password); the other columns are derived from it by the store on every
-- write. name_lc is userName (User) or displayName (Group) lower-cased in Rust
-- (full Unicode), the key of the case-insensitive uniqueness rule.
CREATE TABLE resources (
    org_id        INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id            TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('User', 'Group')),
    name_lc       TEXT,
    user_name     TEXT,
    display_name  TEXT,
    external_id   TEXT,
    active        INTEGER,
    doc           TEXT    NOT NULL,
    password_hash TEXT,
    version       INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, kind, name_lc)
);
CREATE INDEX resources_external_id ON resources (org_id, kind, external_id);
CREATE INDEX resources_display_name ON resources (org_id, kind, display_name);
CREATE INDEX resources_last_modified ON resources (org_id, kind, last_modified);
CREATE INDEX resources_created ON resources (org_id, kind, created);

-- Group memberships, one row per (group, member). Both sides reference a resource
-- of the same organisation (composite keys), so a membership can never cross
-- tenants, and deleting either side deletes the row.
CREATE TABLE members (
    org_id      INTEGER NOT NULL,
    group_id    TEXT    NOT NULL,
    member_id   TEXT    NOT NULL,
    member_kind TEXT    NOT NULL CHECK (member_kind IN ('User', 'Group')),
    PRIMARY KEY (org_id, group_id, member_id),
    FOREIGN KEY (org_id, group_id) REFERENCES resources (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, member_id) REFERENCES resources (org_id, id) ON DELETE CASCADE,
    CHECK (group_id <> member_id)
) WITHOUT ROWID;
CREATE INDEX members_member ON members (org_id, member_id);
