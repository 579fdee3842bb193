//! The SQLite catalog: a local cache of the repository's index segments and snapshots
//! (invariant 1: the repository is the truth). Deleting it loses nothing; the next open
//! rebuilds it from `index/` and `snapshots/` (`sync.rs`).
//!
//! Data path: keyed id → **dedup lookup** (indexed point query per id, never a whole-index
//! load) and, on restore, content list → **catalog lookup** → pack range read. All SQL lives
//! in this module.

pub mod event;
pub mod live;
pub mod schema;
pub mod sync;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::format::index_segment::IndexedPack;
use crate::format::pack::BlobEntry;
use crate::format::snapshot::Snapshot;
use crate::format::{BlobKind, Compression};
use crate::id::{BlobId, IndexId, PackId, RepoId, SnapshotId};

/// Where a blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack that holds it.
    pub pack: PackId,
    /// Its entry in that pack.
    pub entry: BlobEntry,
}

/// One open catalog connection.
#[derive(Debug)]
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

fn sql_err(path: &Path) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |source| Error::Catalog {
        path: path.to_path_buf(),
        source,
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` for repository `repo`. A catalog of
    /// another schema version or another repository is deleted and recreated empty.
    pub fn open(path: &Path, repo: &RepoId) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::LocalIo {
                what: "cannot create cache directory",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        match Self::open_retrying(path, repo)? {
            Some(c) => Ok(c),
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.as_os_str().to_owned();
                    p.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(p));
                }
                Self::open_retrying(path, repo)?.ok_or_else(|| Error::Catalog {
                    path: path.to_path_buf(),
                    source: rusqlite::Error::InvalidQuery,
                })
            }
        }
    }

    /// [`Catalog::open_existing`], retried while another process holds the new file's lock:
    /// SQLite reports "database is locked" without waiting while a fresh catalog's journal
    /// mode and schema are being set up by someone else.
    fn open_retrying(path: &Path, repo: &RepoId) -> Result<Option<Self>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut pause = Duration::from_millis(5);
        loop {
            match Self::open_existing(path, repo) {
                Err(Error::Catalog { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    /// Opens the catalog, or `None` if it must be rebuilt.
    fn open_existing(path: &Path, repo: &RepoId) -> Result<Option<Self>> {
        let e = |source| Error::Catalog {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(e)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        // A cache: losing the last transactions on power loss costs a re-sync, nothing more.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(e)?;
        conn.pragma_update(None, "foreign_keys", "OFF").map_err(e)?;
        // The bundled SQLite has STAT4, which makes it re-prepare a statement every time a
        // bound value compared with an indexed column changes: a re-parse per dedup lookup
        // (27% of restore's CPU when measured). The query planner stability guarantee turns
        // that off; our point queries have one plan anyway.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(e)?;
        let c = Self {
            conn,
            path: path.to_path_buf(),
        };
        let version: i64 = c
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(e)?;
        if version == 0 {
            // IMMEDIATE: take the write lock up front, so that two processes creating the
            // catalog at once queue on the busy timeout instead of failing on lock upgrade.
            let tx = rusqlite::Transaction::new_unchecked(
                &c.conn,
                rusqlite::TransactionBehavior::Immediate,
            )
            .map_err(e)?;
            // Another process may have created it between our check and this transaction.
            let again: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(e)?;
            if again == 0 {
                tx.execute_batch(schema::DDL).map_err(e)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('repo_id', ?1)",
                    [repo.as_bytes().as_slice()],
                )
                .map_err(e)?;
                tx.pragma_update(None, "user_version", schema::USER_VERSION)
                    .map_err(e)?;
            }
            tx.commit().map_err(e)?;
        } else if version != schema::USER_VERSION {
            return Ok(None);
        }
        let stored: Option<Vec<u8>> = c
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'repo_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(e)?;
        if stored.as_deref() != Some(repo.as_bytes().as_slice()) {
            return Ok(None);
        }
        Ok(Some(c))
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        sql_err(&self.path)
    }

    /// The catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index segments already merged.
    pub fn segments(&self) -> Result<HashSet<IndexId>> {
        self.ids("SELECT id FROM segments", IndexId::from_slice)
    }

    /// The ids a one-column query returns (rows that are not 32 bytes are skipped).
    fn ids<T: std::hash::Hash + Eq>(
        &self,
        query: &str,
        parse: fn(&[u8]) -> Option<T>,
    ) -> Result<HashSet<T>> {
        let mut st = self.conn.prepare_cached(query).map_err(self.err())?;
        let rows = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        let mut out = HashSet::new();
        for r in rows {
            out.extend(parse(&r.map_err(self.err())?));
        }
        Ok(out)
    }

    /// Merges one index segment's packs and blobs, atomically. A segment merged already
    /// (by another process) is skipped.
    pub fn add_segment(&mut self, id: &IndexId, packs: &[IndexedPack]) -> Result<()> {
        let path = self.path.clone();
        let e = |source| Error::Catalog {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO segments (id) VALUES (?1)",
                [id.as_bytes().as_slice()],
            )
            .map_err(e)?;
        if added == 1 {
            let segment = tx.last_insert_rowid();
            {
                let mut put_pack = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO packs (id, length, segment) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(e)?;
                let mut get_pack = tx
                    .prepare_cached("SELECT pack FROM packs WHERE id = ?1")
                    .map_err(e)?;
                let mut put_blob = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO blobs \
                         (id, pack, kind, compression, offset, stored_len, raw_len) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(e)?;
                for p in packs {
                    let length = i64::try_from(p.length)
                        .map_err(|_| e(rusqlite::Error::IntegralValueOutOfRange(1, i64::MAX)))?;
                    put_pack
                        .execute(params![p.id.as_bytes().as_slice(), length, segment])
                        .map_err(e)?;
                    let pack: i64 = get_pack
                        .query_row([p.id.as_bytes().as_slice()], |r| r.get(0))
                        .map_err(e)?;
                    for b in &p.blobs {
                        let offset = i64::try_from(b.offset).map_err(|_| {
                            e(rusqlite::Error::IntegralValueOutOfRange(4, i64::MAX))
                        })?;
                        put_blob
                            .execute(params![
                                b.id.as_bytes().as_slice(),
                                pack,
                                b.kind.code(),
                                b.compression.code(),
                                offset,
                                b.stored_len,
                                b.raw_len
                            ])
                            .map_err(e)?;
                    }
                }
            }
        }
        tx.commit().map_err(e)
    }

    /// Forgets every segment, pack and blob (before a full re-sync).
    pub fn clear_index(&mut self) -> Result<()> {
        self.conn
            .execute_batch("DELETE FROM blobs; DELETE FROM packs; DELETE FROM segments;")
            .map_err(self.err())
    }

    /// Whether any index segment names the blob.
    pub fn contains(&self, id: &BlobId) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id = ?1")
            .map_err(self.err())?;
        st.exists([id.as_bytes().as_slice()]).map_err(self.err())
    }

    /// For each id, whether any index segment names it. One read transaction for the lot:
    /// SQLite takes and drops a file lock per statement otherwise.
    pub fn contains_many(&self, ids: &[BlobId]) -> Result<Vec<bool>> {
        self.each_in_read_tx(ids, Self::contains)
    }

    /// [`Catalog::locate`] for many ids in one read transaction.
    pub fn locate_many(&self, ids: &[BlobId]) -> Result<Vec<Option<BlobLocation>>> {
        self.each_in_read_tx(ids, Self::locate)
    }

    fn each_in_read_tx<T>(
        &self,
        ids: &[BlobId],
        query: fn(&Self, &BlobId) -> Result<T>,
    ) -> Result<Vec<T>> {
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        let out = ids
            .iter()
            .map(|id| query(self, id))
            .collect::<Result<_>>()?;
        tx.commit().map_err(self.err())?;
        Ok(out)
    }

    /// Where the blob is stored, if any index segment names it.
    pub fn locate(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len \
                 FROM blobs b JOIN packs p ON p.pack = b.pack WHERE b.id = ?1",
            )
            .map_err(self.err())?;
        let row = st
            .query_row([id.as_bytes().as_slice()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })
            .optional()
            .map_err(self.err())?;
        let Some((pack, kind, compression, offset, stored_len, raw_len)) = row else {
            return Ok(None);
        };
        let bad = |what: &'static str| Error::Catalog {
            path: self.path.clone(),
            source: rusqlite::Error::InvalidColumnName(what.into()),
        };
        Ok(Some(BlobLocation {
            pack: PackId::from_slice(&pack).ok_or_else(|| bad("pack id"))?,
            entry: BlobEntry {
                id: *id,
                kind: BlobKind::from_code(kind).map_err(|_| bad("kind"))?,
                compression: Compression::from_code(compression).map_err(|_| bad("compression"))?,
                offset: u64::try_from(offset).map_err(|_| bad("offset"))?,
                stored_len,
                raw_len,
            },
        }))
    }

    /// Snapshots known to the catalog.
    pub fn snapshot_ids(&self) -> Result<HashSet<SnapshotId>> {
        self.ids("SELECT id FROM snapshots", SnapshotId::from_slice)
    }

    /// Records snapshots read from the repository, in one transaction.
    pub fn add_snapshots(&mut self, snaps: &[(SnapshotId, Snapshot)]) -> Result<()> {
        self.execute_each(
            "INSERT OR IGNORE INTO snapshots (id, time, name, host, body) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            snaps.iter().map(|(id, s)| {
                (
                    id.as_bytes().as_slice(),
                    s.time.as_microsecond(),
                    s.name.as_str(),
                    s.host.as_str(),
                    String::from_utf8(s.encode_body()).unwrap_or_default(),
                )
            }),
        )
    }

    /// Forgets snapshots no longer in the repository.
    pub fn remove_snapshots(&mut self, ids: &[SnapshotId]) -> Result<()> {
        self.delete_ids(
            "DELETE FROM snapshots WHERE id = ?1",
            ids.iter().map(|i| i.as_bytes()),
        )
    }

    /// Every snapshot, oldest first (ties broken by id).
    pub fn snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        self.bodies(
            "SELECT id, body FROM snapshots ORDER BY time, id",
            "snapshot",
            SnapshotId::from_slice,
            Snapshot::decode_body,
        )
    }

    /// Deletes the rows `sql` (`DELETE … WHERE id = ?1`) names for each id, in one
    /// transaction.
    fn delete_ids<'a>(
        &mut self,
        sql: &str,
        ids: impl Iterator<Item = &'a [u8; crate::id::ID_LEN]>,
    ) -> Result<()> {
        self.execute_each(sql, ids.map(|id| [id.as_slice()]))
    }

    /// Runs `sql` once per row of parameters, in one transaction.
    fn execute_each<P: rusqlite::Params>(
        &mut self,
        sql: &str,
        rows: impl Iterator<Item = P>,
    ) -> Result<()> {
        let path = self.path.clone();
        let e = |source| Error::Catalog {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut st = tx.prepare_cached(sql).map_err(e)?;
            for row in rows {
                st.execute(row).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// The `(id, body)` rows of `sql`, decoded: the catalog's copies of stored JSON objects
    /// (`what` names them in errors).
    fn bodies<I: std::fmt::Display, T>(
        &self,
        sql: &str,
        what: &str,
        parse_id: fn(&[u8]) -> Option<I>,
        decode: fn(&[u8]) -> std::result::Result<T, crate::format::DecodeError>,
    ) -> Result<Vec<(I, T)>> {
        let mut st = self.conn.prepare_cached(sql).map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, body) = r.map_err(self.err())?;
            let id = parse_id(&id).ok_or_else(|| Error::Catalog {
                path: self.path.clone(),
                source: rusqlite::Error::InvalidColumnName(format!("{what} id")),
            })?;
            let value = decode(body.as_bytes())
                .map_err(|e| Error::corrupt(format!("catalog entry for {what} {id}"), e))?;
            out.push((id, value));
        }
        Ok(out)
    }

    /// The packs the catalog learned from index segment `id`, with their indexed lengths;
    /// empty if it never merged that segment. Lets `check` say what a segment that no
    /// longer decodes used to name.
    pub fn segment_packs(&self, id: &IndexId) -> Result<Vec<(PackId, u64)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.id, p.length FROM packs p JOIN segments s ON s.segment = p.segment \
                 WHERE s.id = ?1 ORDER BY p.id",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([id.as_bytes().as_slice()], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(self.err())?;
        let bad = |what: &'static str| Error::Catalog {
            path: self.path.clone(),
            source: rusqlite::Error::InvalidColumnName(what.into()),
        };
        let mut out = Vec::new();
        for r in rows {
            let (pack, length) = r.map_err(self.err())?;
            out.push((
                PackId::from_slice(&pack).ok_or_else(|| bad("pack id"))?,
                u64::try_from(length).map_err(|_| bad("pack length"))?,
            ));
        }
        Ok(out)
    }

    /// The blobs the catalog places in pack `id`, in pack order. A blob stored in two packs
    /// is listed only under the one learned first (see the schema), so this can be a subset
    /// of the pack's header.
    pub fn pack_blobs(&self, id: &PackId) -> Result<Vec<BlobEntry>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT b.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len \
                 FROM blobs b JOIN packs p ON p.pack = b.pack WHERE p.id = ?1 \
                 ORDER BY b.offset",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([id.as_bytes().as_slice()], EntryRow::read)
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.entry(r.map_err(self.err())?)?);
        }
        Ok(out)
    }

    /// A blob entry from its catalog row, checking every column.
    pub(crate) fn entry(&self, r: EntryRow) -> Result<BlobEntry> {
        let bad = |what: &'static str| Error::Catalog {
            path: self.path.clone(),
            source: rusqlite::Error::InvalidColumnName(what.into()),
        };
        let (blob, kind, compression, offset, stored_len, raw_len) = r.0;
        Ok(BlobEntry {
            id: BlobId::from_slice(&blob).ok_or_else(|| bad("blob id"))?,
            kind: BlobKind::from_code(kind).map_err(|_| bad("kind"))?,
            compression: Compression::from_code(compression).map_err(|_| bad("compression"))?,
            offset: u64::try_from(offset).map_err(|_| bad("offset"))?,
            stored_len,
            raw_len,
        })
    }
}

/// The columns `id, kind, compression, offset, stored_len, raw_len` of a `blobs` row.
pub(crate) struct EntryRow((Vec<u8>, u8, u8, i64, u32, u32));

impl EntryRow {
    /// Reads the six columns, in that order, from a row.
    pub(crate) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        )))
    }
}
