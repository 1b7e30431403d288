-- Directory sources (PostgreSQL flavour; ../sqlite/0005_sources.sql must stay
-- equivalent): an organisation whose users and groups are read from an
-- identity provider (a Keycloak realm) instead of pushed over SCIM. At most one
-- per organisation; while it exists, SCIM writes to the organisation are refused.
-- What the state columns hold is listed in docs/PRIVACY.md.
CREATE TABLE sources (
    org_id           BIGINT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL CHECK (kind IN ('keycloak')),
    base_url         TEXT    NOT NULL,
    realm            TEXT    NOT NULL,
    client_id        TEXT    NOT NULL,
    -- Where the client secret is ("file:/path" or "env:VAR"), never the secret.
    credential       TEXT    NOT NULL,
    -- Seconds between two full reconciliations.
    interval_secs    BIGINT  NOT NULL,
    -- 1 until the first full reconciliation has matched the resources the
    -- directory held when the source was added (by externalId, then by name).
    adopt            BIGINT  NOT NULL,
    created          BIGINT  NOT NULL,
    -- Keycloak times (milliseconds since the epoch) of the last admin event and
    -- of the last user event applied; NULL before the first full reconciliation.
    admin_cursor     BIGINT,
    event_cursor     BIGINT,
    -- JSON array of the ids of the events applied at or just before the cursors
    -- (so that re-reading the overlap does not apply them twice).
    seen_events      TEXT    NOT NULL,
    last_full_sync   BIGINT,
    last_follow      BIGINT,
    last_error       TEXT,
    last_error_at    BIGINT,
    -- Figures of the last full reconciliation: users and groups in the realm.
    realm_users      BIGINT,
    realm_groups     BIGINT,
    -- Changes applied since the source was added.
    applied          BIGINT  NOT NULL,
    -- Set to ask the server's follower for a full reconciliation now.
    full_sync_requested BIGINT  NOT NULL
);
