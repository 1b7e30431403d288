-- Carbon footprint (PostgreSQL flavour; ../sqlite/0009_footprint.sql must stay
-- equivalent). Each organisation's result of a computed month, so that its report
-- can chart the months before. Nothing about any person: figures of namespaces
-- and buckets only.

-- result: the organisation's part of the month's report (JSON, as
-- footprint::report::OrgReport); method: the method's version that computed it.
CREATE TABLE footprint_results (
    org_id   BIGINT  NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    period   TEXT    NOT NULL,
    method   TEXT    NOT NULL,
    computed BIGINT  NOT NULL,
    result   TEXT    NOT NULL,
    PRIMARY KEY (org_id, period)
);
