-- Outbox leases held by a worker incarnation, and repairs (SQLite flavour;
-- ../postgres/0011_outbox_leases.sql must stay equivalent).
--
-- `lease_owner` names the lease a worker holds on a row: `{role}:{incarnation}/{claim}`,
-- '' when the row is not leased. Completions, failures and hand-backs apply only
-- to the lease they name; a worker renews the leases it holds (heartbeat), and a
-- restarted `serve` on SQLite takes back the rows of its earlier incarnations.
-- `forced` marks a reconciliation repair: the next delivery sends the directory's
-- state even when the app is recorded as holding it already.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
