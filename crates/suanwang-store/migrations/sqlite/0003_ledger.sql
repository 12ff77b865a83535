-- The ledger's history (suanwang-ledger's events, one line each, see its codec): append-only,
-- replayed on start. Nothing is ever updated or deleted.
CREATE TABLE ledger_events (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL
);
