//! Counts the requests and bytes a run sends to its backend, for `--json` output and for
//! the cost of a night on object storage (PUT/GET/LIST/DELETE are what S3 bills).

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Backend, Error, ObjectInfo, ObjectKey, Prefix, StagedObject};

/// Running totals, shared by the backend and whoever reports them.
#[derive(Debug, Default)]
pub struct RequestCounts {
    put: AtomicU64,
    get: AtomicU64,
    list: AtomicU64,
    delete: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// A snapshot of [`RequestCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Requests {
    /// Objects written (a staged pack counts once, however it is uploaded).
    pub put: u64,
    /// Whole and ranged reads.
    pub get: u64,
    /// Listings.
    pub list: u64,
    /// Deletions.
    pub delete: u64,
    /// Bytes written.
    pub bytes_up: u64,
    /// Bytes read.
    pub bytes_down: u64,
}

impl RequestCounts {
    /// The totals so far.
    pub fn snapshot(&self) -> Requests {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Requests {
            put: g(&self.put),
            get: g(&self.get),
            list: g(&self.list),
            delete: g(&self.delete),
            bytes_up: g(&self.bytes_up),
            bytes_down: g(&self.bytes_down),
        }
    }

    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }
}

/// A backend that counts what passes through it.
#[derive(Debug)]
pub struct CountingBackend {
    inner: Arc<dyn Backend>,
    counts: Arc<RequestCounts>,
}

impl CountingBackend {
    /// Wraps `inner`; `counts` collects the totals.
    pub fn new(inner: Arc<dyn Backend>, counts: Arc<RequestCounts>) -> Self {
        Self { inner, counts }
    }
}

impl Backend for CountingBackend {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<(), Error> {
        RequestCounts::add(&self.counts.put, 1);
        RequestCounts::add(&self.counts.bytes_up, data.len() as u64);
        self.inner.put(key, data)
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, Error> {
        RequestCounts::add(&self.counts.get, 1);
        let out = self.inner.get(key)?;
        RequestCounts::add(&self.counts.bytes_down, out.len() as u64);
        Ok(out)
    }

    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Vec<u8>, Error> {
        RequestCounts::add(&self.counts.get, 1);
        let out = self.inner.get_range(key, range)?;
        RequestCounts::add(&self.counts.bytes_down, out.len() as u64);
        Ok(out)
    }

    fn list(&self, prefix: Prefix) -> Result<Vec<ObjectInfo>, Error> {
        RequestCounts::add(&self.counts.list, 1);
        self.inner.list(prefix)
    }

    fn delete(&self, key: &ObjectKey) -> Result<(), Error> {
        RequestCounts::add(&self.counts.delete, 1);
        self.inner.delete(key)
    }

    fn probe_conditional_writes(&self) -> Result<super::ConditionalWrites, Error> {
        self.inner.probe_conditional_writes()
    }

    fn io_profile(&self) -> super::IoProfile {
        self.inner.io_profile()
    }

    fn stage(&self, prefix: Prefix) -> Result<Box<dyn StagedObject>, Error> {
        Ok(Box::new(CountingStaged {
            inner: self.inner.stage(prefix)?,
            counts: self.counts.clone(),
        }))
    }
}

#[derive(Debug)]
struct CountingStaged {
    inner: Box<dyn StagedObject>,
    counts: Arc<RequestCounts>,
}

impl StagedObject for CountingStaged {
    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        RequestCounts::add(&self.counts.bytes_up, data.len() as u64);
        self.inner.write(data)
    }

    fn commit(self: Box<Self>, key: &ObjectKey) -> Result<(), Error> {
        RequestCounts::add(&self.counts.put, 1);
        self.inner.commit(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;

    #[test]
    fn counts_requests_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let counts = Arc::new(RequestCounts::default());
        let b = CountingBackend::new(
            Arc::new(LocalBackend::create(dir.path().join("r")).unwrap()),
            counts.clone(),
        );
        let k = ObjectKey::from_raw("index/ab");
        b.put(&k, b"hello").unwrap();
        assert_eq!(b.get(&k).unwrap(), b"hello");
        assert_eq!(b.get_range(&k, 1..3).unwrap(), b"el");
        b.list(Prefix::Index).unwrap();
        let mut s = b.stage(Prefix::Packs).unwrap();
        s.write(b"0123456789").unwrap();
        s.commit(&ObjectKey::from_raw("packs/01/0123")).unwrap();
        b.delete(&k).unwrap();
        assert_eq!(
            counts.snapshot(),
            Requests {
                put: 2,
                get: 2,
                list: 1,
                delete: 1,
                bytes_up: 15,
                bytes_down: 7,
            }
        );
    }
}
