//! The catalog's DDL. The schema is versioned by `PRAGMA user_version`; a catalog of any
//! other version is rebuilt from the repository (it is a cache).

/// The schema version this build writes.
pub const USER_VERSION: i64 = 2;

/// Creates every table of an empty catalog.
pub const DDL: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE segments (
    segment INTEGER PRIMARY KEY,
    id      BLOB NOT NULL UNIQUE
);
CREATE TABLE packs (
    pack    INTEGER PRIMARY KEY,
    id      BLOB NOT NULL UNIQUE,
    length  INTEGER NOT NULL,
    segment INTEGER NOT NULL REFERENCES segments(segment)
);
-- One row per blob id: the first location learned wins; duplicates (two writers storing the
-- same blob at once) cost space until prune, never correctness.
CREATE TABLE blobs (
    id          BLOB PRIMARY KEY,
    pack        INTEGER NOT NULL REFERENCES packs(pack),
    kind        INTEGER NOT NULL,
    compression INTEGER NOT NULL,
    offset      INTEGER NOT NULL,
    stored_len  INTEGER NOT NULL,
    raw_len     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE snapshots (
    id   BLOB PRIMARY KEY,
    time INTEGER NOT NULL,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX snapshots_by_name_time ON snapshots(name, time);
CREATE TABLE events (
    id     BLOB PRIMARY KEY,
    time   INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    series TEXT,
    body   TEXT NOT NULL
);
";
