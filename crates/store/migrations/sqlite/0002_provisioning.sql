-- Provisioning into the apps (SQLite flavour; ../postgres/0002_provisioning.sql
-- must stay equivalent).

-- The apps of an organisation. `credential` says where the secret is
-- ("file:/path" or "env:VAR"), never the secret itself.
CREATE TABLE apps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    base_url    TEXT    NOT NULL,
    credential  TEXT    NOT NULL,
    groups_as   TEXT    NOT NULL,
    deprovision TEXT    NOT NULL CHECK (deprovision IN ('disable', 'delete')),
    settings    TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

-- Pending deliveries: "make app A hold the current state of this resource" (or of
-- this membership). One row per (app, target); a change to a resource that already
-- has a row bumps `seq` instead of adding a row, so superseded changes coalesce.
-- A worker leases rows (lease_until) and deletes a row only if `seq` is still the
-- one it delivered. member_id is '' unless target = 'member'.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       INTEGER NOT NULL,
    app_id       INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    target       TEXT    NOT NULL CHECK (target IN ('user', 'group', 'member')),
    resource_id  TEXT    NOT NULL,
    member_id    TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'poison')),
    attempts     INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL,
    last_error   TEXT,
    enqueued     INTEGER NOT NULL,
    UNIQUE (app_id, target, resource_id, member_id)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt);
CREATE INDEX outbox_resource ON outbox (org_id, resource_id);

-- What each app holds for each resource: the app's own id, the state last
-- delivered (JSON), and the outcome of the last attempt.
CREATE TABLE app_links (
    app_id       INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    resource_id  TEXT    NOT NULL,
    app_ref      TEXT,
    delivered    TEXT,
    status       TEXT    NOT NULL,
    last_attempt INTEGER NOT NULL,
    last_error   TEXT,
    PRIMARY KEY (app_id, resource_id)
) WITHOUT ROWID;
