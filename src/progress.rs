//! Progress reporting: the library counts, the CLI draws. Tests pass [`NoProgress`].

/// Receives counts from a running operation; called from several threads.
pub trait Progress: Sync {
    /// Bytes read from the source (backup) or restored to the sink (restore).
    fn bytes(&self, _n: u64) {}
    /// Stored bytes added to the repository.
    fn added(&self, _n: u64) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
