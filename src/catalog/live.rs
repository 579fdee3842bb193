//! The live set for prune: blob ids reachable from the kept snapshots, marked in a temporary
//! table of the catalog so that memory stays bounded however large the repository is, and
//! per-pack usage computed by SQL.

use rusqlite::params;

use super::Catalog;
use crate::error::{Error, Result};
use crate::format::pack::BlobEntry;
use crate::format::{BlobKind, Compression};
use crate::id::{BlobId, PackId};

/// How much of a pack the live set uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackUsage {
    /// The pack.
    pub id: PackId,
    /// Its length in bytes.
    pub length: u64,
    /// Blobs the index places in it.
    pub blobs: u64,
    /// Of those, live ones.
    pub live_blobs: u64,
    /// Sealed bytes of the live ones.
    pub live_bytes: u64,
}

impl Catalog {
    /// Starts a new, empty live set (a temporary table: gone when the connection closes).
    pub fn live_reset(&self) -> Result<()> {
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS live (id BLOB PRIMARY KEY) WITHOUT ROWID;
                 DELETE FROM temp.live;",
            )
            .map_err(self.err())
    }

    /// Adds ids to the live set; returns, per id, whether it was new (a list or tree already
    /// marked need not be walked again).
    pub fn live_mark(&self, ids: &[BlobId]) -> Result<Vec<bool>> {
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        let mut out = Vec::with_capacity(ids.len());
        {
            let mut st = tx
                .prepare_cached("INSERT OR IGNORE INTO temp.live (id) VALUES (?1)")
                .map_err(self.err())?;
            for id in ids {
                out.push(st.execute([id.as_bytes().as_slice()]).map_err(self.err())? == 1);
            }
        }
        tx.commit().map_err(self.err())?;
        Ok(out)
    }

    /// Live ids that no index segment names (a damaged repository: prune must not run).
    pub fn live_unindexed(&self, limit: usize) -> Result<Vec<BlobId>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT l.id FROM temp.live l LEFT JOIN blobs b ON b.id = l.id \
                 WHERE b.id IS NULL LIMIT ?1",
            )
            .map_err(self.err())?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st
            .query_map([limit], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.extend(BlobId::from_slice(&r.map_err(self.err())?));
        }
        Ok(out)
    }

    /// Every indexed pack with how much of it is live.
    pub fn pack_usage(&self) -> Result<Vec<PackUsage>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT p.id, p.length, COUNT(b.id), COUNT(l.id), \
                        COALESCE(SUM(CASE WHEN l.id IS NOT NULL THEN b.stored_len END), 0) \
                 FROM packs p LEFT JOIN blobs b ON b.pack = p.pack \
                 LEFT JOIN temp.live l ON l.id = b.id GROUP BY p.pack ORDER BY p.id",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, length, blobs, live_blobs, live_bytes) = r.map_err(self.err())?;
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            out.push(PackUsage {
                id: PackId::from_slice(&id).ok_or_else(|| self.bad("pack id"))?,
                length: n(length),
                blobs: n(blobs),
                live_blobs: n(live_blobs),
                live_bytes: n(live_bytes),
            });
        }
        Ok(out)
    }

    /// The blobs the index places in `pack`, in file order; `live_only` keeps live ones.
    pub fn pack_entries(&self, pack: &PackId, live_only: bool) -> Result<Vec<BlobEntry>> {
        let sql = if live_only {
            "SELECT b.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len \
             FROM blobs b JOIN packs p ON p.pack = b.pack JOIN temp.live l ON l.id = b.id \
             WHERE p.id = ?1 ORDER BY b.offset"
        } else {
            "SELECT b.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len \
             FROM blobs b JOIN packs p ON p.pack = b.pack WHERE p.id = ?1 ORDER BY b.offset"
        };
        let mut st = self.conn.prepare_cached(sql).map_err(self.err())?;
        let rows = st
            .query_map(params![pack.as_bytes().as_slice()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, kind, compression, offset, stored_len, raw_len) = r.map_err(self.err())?;
            out.push(BlobEntry {
                id: BlobId::from_slice(&id).ok_or_else(|| self.bad("blob id"))?,
                kind: BlobKind::from_code(kind).map_err(|_| self.bad("kind"))?,
                compression: Compression::from_code(compression)
                    .map_err(|_| self.bad("compression"))?,
                offset: u64::try_from(offset).map_err(|_| self.bad("offset"))?,
                stored_len,
                raw_len,
            });
        }
        Ok(out)
    }

    fn bad(&self, what: &str) -> Error {
        Error::Catalog {
            path: self.path.clone(),
            source: rusqlite::Error::InvalidColumnName(what.into()),
        }
    }
}
