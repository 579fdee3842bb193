//! The live set for prune: blob ids reachable from the kept snapshots, marked in a temporary
//! table of the catalog so that memory stays bounded however large the repository is, and
//! per-pack usage computed by SQL. Also the blob and pack totals `stats` reports, summed by
//! SQL over the whole index.

use rusqlite::params;

use super::{Catalog, EntryRow};
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::pack::BlobEntry;
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
    /// Their sealed bytes.
    pub blob_bytes: u64,
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
                        COALESCE(SUM(CASE WHEN l.id IS NOT NULL THEN b.stored_len END), 0), \
                        COALESCE(SUM(b.stored_len), 0) \
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
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, length, blobs, live_blobs, live_bytes, blob_bytes) = r.map_err(self.err())?;
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            out.push(PackUsage {
                id: PackId::from_slice(&id).ok_or_else(|| self.bad("pack id"))?,
                length: n(length),
                blobs: n(blobs),
                blob_bytes: n(blob_bytes),
                live_blobs: n(live_blobs),
                live_bytes: n(live_bytes),
            });
        }
        Ok(out)
    }

    /// The blobs the index places in `pack`, in file order; `live_only` keeps live ones.
    pub fn pack_entries(&self, pack: &PackId, live_only: bool) -> Result<Vec<BlobEntry>> {
        if !live_only {
            return self.pack_blobs(pack);
        }
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT b.id, b.kind, b.compression, b.offset, b.stored_len, b.raw_len \
                 FROM blobs b JOIN packs p ON p.pack = b.pack JOIN temp.live l ON l.id = b.id \
                 WHERE p.id = ?1 ORDER BY b.offset",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map(params![pack.as_bytes().as_slice()], EntryRow::read)
            .map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(self.entry(r.map_err(self.err())?)?);
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

/// How many indexed blobs a set holds and how large they are. A blob the index places in
/// two packs counts once (the catalog keeps one location per id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlobTotals {
    /// Blobs.
    pub blobs: u64,
    /// Their plaintext bytes (before compression).
    pub raw_bytes: u64,
    /// Their sealed bytes in packs (compressed, encrypted, with nonce and tag).
    pub stored_bytes: u64,
}

impl BlobTotals {
    /// The sum of two totals.
    pub fn plus(self, o: Self) -> Self {
        Self {
            blobs: self.blobs.saturating_add(o.blobs),
            raw_bytes: self.raw_bytes.saturating_add(o.raw_bytes),
            stored_bytes: self.stored_bytes.saturating_add(o.stored_bytes),
        }
    }
}

/// Indexed blobs by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindTotals {
    /// Data chunks.
    pub data: BlobTotals,
    /// Content-list blobs.
    pub content_list: BlobTotals,
    /// Tree blobs.
    pub tree: BlobTotals,
}

impl KindTotals {
    /// Every kind together.
    pub fn all(&self) -> BlobTotals {
        self.data.plus(self.content_list).plus(self.tree)
    }
}

impl Catalog {
    /// Totals of every indexed blob, by kind: one pass over the blob table, no live set.
    pub fn blob_totals(&self) -> Result<KindTotals> {
        self.kind_totals(
            "SELECT kind, COUNT(*), COALESCE(SUM(raw_len), 0), COALESCE(SUM(stored_len), 0) \
             FROM blobs GROUP BY kind",
        )
    }

    /// Totals of the indexed blobs that are not in the live set (after [`Catalog::live_mark`]
    /// has marked every snapshot: what no snapshot references).
    pub fn unused_blob_totals(&self) -> Result<KindTotals> {
        self.kind_totals(
            "SELECT b.kind, COUNT(*), COALESCE(SUM(b.raw_len), 0), \
                    COALESCE(SUM(b.stored_len), 0) \
             FROM blobs b LEFT JOIN temp.live l ON l.id = b.id WHERE l.id IS NULL \
             GROUP BY b.kind",
        )
    }

    fn kind_totals(&self, sql: &str) -> Result<KindTotals> {
        let mut st = self.conn.prepare(sql).map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, u8>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = KindTotals::default();
        for r in rows {
            let (kind, blobs, raw, stored) = r.map_err(self.err())?;
            let n = |v: i64| u64::try_from(v).map_err(|_| self.bad("blob totals"));
            let t = BlobTotals {
                blobs: n(blobs)?,
                raw_bytes: n(raw)?,
                stored_bytes: n(stored)?,
            };
            let slot = match BlobKind::from_code(kind).map_err(|_| self.bad("kind"))? {
                BlobKind::Data => &mut out.data,
                BlobKind::ContentList => &mut out.content_list,
                BlobKind::Tree => &mut out.tree,
            };
            *slot = slot.plus(t);
        }
        Ok(out)
    }

    /// Indexed packs: how many, and their total length in bytes.
    pub fn pack_totals(&self) -> Result<(u64, u64)> {
        let (count, bytes) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(length), 0) FROM packs",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(self.err())?;
        let n = |v: i64| u64::try_from(v).map_err(|_| self.bad("pack totals"));
        Ok((n(count)?, n(bytes)?))
    }

    /// The ids of every indexed pack.
    pub fn pack_ids(&self) -> Result<std::collections::HashSet<PackId>> {
        self.ids("SELECT id FROM packs", PackId::from_slice)
    }
}
