//! The catalog's copy of the repository's `events/` (format-spec/event.md): what `status`
//! and the metrics file read, without a GET per event on every run.

use std::collections::HashSet;

use super::Catalog;
use crate::error::Result;
use crate::format::event::Event;
use crate::id::EventId;

impl Catalog {
    /// Events already merged.
    pub fn event_ids(&self) -> Result<HashSet<EventId>> {
        self.ids("SELECT id FROM events", EventId::from_slice)
    }

    /// Records events read from (or just written to) the repository, in one transaction.
    pub fn add_events(&mut self, events: &[(EventId, Event)]) -> Result<()> {
        self.execute_each(
            "INSERT OR IGNORE INTO events (id, time, kind, series, body) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            events.iter().map(|(id, ev)| {
                (
                    id.as_bytes().as_slice(),
                    ev.time.as_microsecond(),
                    ev.kind.name(),
                    ev.series.as_deref(),
                    String::from_utf8(ev.encode_body()).unwrap_or_default(),
                )
            }),
        )
    }

    /// Forgets events that are gone from the repository.
    pub fn remove_events(&mut self, ids: &[EventId]) -> Result<()> {
        self.delete_ids(
            "DELETE FROM events WHERE id = ?1",
            ids.iter().map(|i| i.as_bytes()),
        )
    }

    /// Every event, oldest first (ties broken by id).
    pub fn events(&self) -> Result<Vec<(EventId, Event)>> {
        self.bodies(
            "SELECT id, body FROM events ORDER BY time, id",
            "event",
            EventId::from_slice,
            Event::decode_body,
        )
    }
}
