-- Activity metering (SQLite flavour; ../postgres/0003_metering.sql must stay
-- equivalent). What each table holds about people, and for how long, is listed
-- in docs/PRIVACY.md; keep that inventory true when this schema changes.

-- Organisation profile: branding for the error pages, the pricing category and
-- the customer name in the accounting system. One row per organisation, created
-- on first use.
CREATE TABLE org_profiles (
    org_id           INTEGER PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    display_name     TEXT,
    logo_url         TEXT,
    color            TEXT,
    contact_email    TEXT,
    status_url       TEXT,
    default_language TEXT,
    category         TEXT,
    billing_customer TEXT
);

-- Webhook secret of an organisation's identity-provider event feed (verifies
-- the HMAC signature, so it is kept as is).
CREATE TABLE meter_webhooks (
    org_id  INTEGER PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    secret  BLOB    NOT NULL,
    created INTEGER NOT NULL
);

-- Metering periods. `label` is the period's name (`2026-11`); starts/ends are
-- its bounds (end exclusive); active_accounts is set when it closes.
CREATE TABLE meter_periods (
    org_id          INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    label           TEXT    NOT NULL,
    starts          INTEGER NOT NULL,
    ends            INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
    active_accounts INTEGER,
    closed_at       INTEGER,
    PRIMARY KEY (org_id, label)
);

-- The random key of an open period. Deleted when the period closes, which
-- deletes (cascade) every keyed hash of the period.
CREATE TABLE meter_keys (
    org_id     INTEGER NOT NULL,
    label      TEXT    NOT NULL,
    period_key BLOB    NOT NULL,
    PRIMARY KEY (org_id, label),
    FOREIGN KEY (org_id, label) REFERENCES meter_periods (org_id, label) ON DELETE CASCADE
);

-- People seen active during an open period: HMAC-SHA256(period key, person id),
-- once per source (`keycloak` or an app's name). No time, no other column.
CREATE TABLE meter_seen (
    org_id INTEGER NOT NULL,
    label  TEXT    NOT NULL,
    source TEXT    NOT NULL,
    hash   BLOB    NOT NULL,
    PRIMARY KEY (org_id, label, source, hash),
    FOREIGN KEY (org_id, label) REFERENCES meter_keys (org_id, label) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX meter_seen_hash ON meter_seen (org_id, label, hash);

-- What survives a closed period: the number of distinct people per source.
CREATE TABLE meter_counts (
    org_id   INTEGER NOT NULL,
    label    TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    accounts INTEGER NOT NULL,
    PRIMARY KEY (org_id, label, source),
    FOREIGN KEY (org_id, label) REFERENCES meter_periods (org_id, label) ON DELETE CASCADE
);

-- Invoices exported for a closed period (one per organisation, period and
-- accounting system), so that an export is never repeated.
CREATE TABLE meter_invoices (
    org_id     INTEGER NOT NULL,
    label      TEXT    NOT NULL,
    system     TEXT    NOT NULL,
    reference  TEXT    NOT NULL,
    created    INTEGER NOT NULL,
    PRIMARY KEY (org_id, label, system),
    FOREIGN KEY (org_id, label) REFERENCES meter_periods (org_id, label) ON DELETE CASCADE
);

-- Host names served by the error pages, each mapped to one organisation.
CREATE TABLE domains (
    host    TEXT    PRIMARY KEY,
    org_id  INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created INTEGER NOT NULL
);
CREATE INDEX domains_org ON domains (org_id);

-- Scheduled maintenance windows; app NULL = every app of the organisation.
-- messages: JSON object language -> text.
CREATE TABLE maintenance_windows (
    id       TEXT    PRIMARY KEY,
    org_id   INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    app      TEXT,
    starts   INTEGER NOT NULL,
    ends     INTEGER NOT NULL,
    messages TEXT    NOT NULL,
    created  INTEGER NOT NULL
);
CREATE INDEX maintenance_org ON maintenance_windows (org_id, ends);
