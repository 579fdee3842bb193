//! Recording runs, drills and prunes in the repository (format-spec/event.md), so that
//! `status` and the metrics file on any host see them. An event is written after what it
//! records has finished; losing one (a crash just before) loses a line of history, never
//! data.

use crate::error::Result;
use crate::format::event::{Event, EventKind};
use crate::id::EventId;
use crate::repo::{Repo, object};

impl Event {
    /// An event of `kind` for `series` that started at `started` and ends now, on this host
    /// (or `host`); not yet successful, no snapshot, no counts.
    pub fn begun(
        kind: EventKind,
        series: Option<&str>,
        host: Option<&str>,
        started: (jiff::Timestamp, std::time::Instant),
    ) -> Event {
        Event {
            kind,
            time: started.0,
            duration: started.1.elapsed().as_secs_f64(),
            host: host.map_or_else(crate::snapshot::default_host, str::to_owned),
            series: series.map(str::to_owned),
            ok: false,
            snapshot: None,
            error: None,
            bytes_read: 0,
            bytes_added: 0,
            larder_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Stores `event` (create-only, named by its hash) and adds it to the catalog.
pub fn record(repo: &mut Repo, event: &Event) -> Result<EventId> {
    let id = object::store_event(repo.backend().as_ref(), repo.keys(), event)?;
    repo.catalog_mut().add_events(&[(id, event.clone())])?;
    tracing::debug!(
        kind = event.kind.name(),
        ok = event.ok,
        "recorded event {id}"
    );
    Ok(id)
}
