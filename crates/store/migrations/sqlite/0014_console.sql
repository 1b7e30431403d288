-- The web console's one-time login links, sessions and audit log (SQLite
-- flavour; ../postgres/0014_console.sql must stay equivalent).
-- docs/PRIVACY.md describes what is kept.
--
-- Links and sessions are stored as the SHA-256 (hex) of their secret, never
-- the secret. `org_id` NULL with role 'operator'; an organisation admin's rows
-- go with its organisation. `label` is the public name of a link, the
-- `actor` of a session says who signed in (`link:<label>`) and is what the
-- audit log records as "who".
CREATE TABLE console_links (
    secret_hash TEXT    PRIMARY KEY,
    label       TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    org_id      INTEGER REFERENCES orgs (id) ON DELETE CASCADE,
    created     INTEGER NOT NULL,
    expires     INTEGER NOT NULL,
    CHECK ((role = 'operator' AND org_id IS NULL) OR (role = 'org_admin' AND org_id IS NOT NULL))
);
CREATE INDEX console_links_expires ON console_links (expires);

CREATE TABLE console_sessions (
    id_hash TEXT    PRIMARY KEY,
    role    TEXT    NOT NULL,
    org_id  INTEGER REFERENCES orgs (id) ON DELETE CASCADE,
    actor   TEXT    NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    CHECK ((role = 'operator' AND org_id IS NULL) OR (role = 'org_admin' AND org_id IS NOT NULL))
);
CREATE INDEX console_sessions_expires ON console_sessions (expires);

-- What was done through the console: who (the session's actor and role),
-- what (an action name, the organisation's slug, the id of the resource it
-- concerned and a short detail without personal data), when. Kept when the
-- organisation is deleted (the slug is text, not a reference).
CREATE TABLE console_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    org_slug TEXT,
    action   TEXT    NOT NULL,
    subject  TEXT,
    detail   TEXT
);
