-- Indexed values of multi-valued attributes and Unicode-lower-cased User
-- displayName (PostgreSQL flavour; ../sqlite/0012_values.sql must stay equivalent).
--
-- attr_values: one row per element of a User's `emails` and `phoneNumbers`
-- arrays, derived from the document by the store on every write of the resource
-- (same transaction), so that filters on them are index lookups rather than a
-- scan of every document. pos is the element's position in the array; type_lc
-- and value_lc are the element's `type` and `value` lower-cased in Rust (full
-- Unicode), NULL when absent or not a string; is_primary its `primary` (NULL
-- when absent or not a boolean).
CREATE TABLE attr_values (
    org_id      BIGINT  NOT NULL,
    resource_id TEXT    COLLATE "C" NOT NULL,
    attr        TEXT    COLLATE "C" NOT NULL,
    pos         BIGINT  NOT NULL,
    type_lc     TEXT    COLLATE "C",
    value_lc    TEXT    COLLATE "C",
    is_primary  BOOLEAN,
    PRIMARY KEY (org_id, resource_id, attr, pos),
    FOREIGN KEY (org_id, resource_id) REFERENCES resources (org_id, id) ON DELETE CASCADE
);
CREATE INDEX attr_values_value ON attr_values (org_id, attr, value_lc);

-- displayName lower-cased in Rust (full Unicode), for case-insensitive filters
-- and sorting on User displayName (Groups use name_lc).
ALTER TABLE resources ADD COLUMN display_name_lc TEXT COLLATE "C";
CREATE INDEX resources_display_name_lc ON resources (org_id, kind, display_name_lc);

-- Derived data the store fills in Rust after the SQL migrations (SQL cannot
-- lower-case like Rust does): one row per pending job, deleted in the
-- transaction that completes it.
CREATE TABLE store_backfills (
    name TEXT PRIMARY KEY
);
INSERT INTO store_backfills (name) VALUES ('derived_values');

-- Metering: the identity provider's source is `idp:keycloak`, a name no app can
-- take (app names have no ':'); it was `keycloak`, which an app could also be
-- called.
UPDATE meter_seen SET source = 'idp:keycloak' WHERE source = 'keycloak';
UPDATE meter_counts SET source = 'idp:keycloak' WHERE source = 'keycloak';
