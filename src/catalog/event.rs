//! The catalog's copy of the repository's `events/` (format-spec/event.md): what `status`
//! and the metrics file read, without a GET per event on every run.

use std::collections::HashSet;

use rusqlite::params;

use super::Catalog;
use crate::error::{Error, Result};
use crate::format::event::Event;
use crate::id::EventId;

impl Catalog {
    /// Events already merged.
    pub fn event_ids(&self) -> Result<HashSet<EventId>> {
        self.ids("SELECT id FROM events", EventId::from_slice)
    }

    /// Records events read from (or just written to) the repository, in one transaction.
    pub fn add_events(&mut self, events: &[(EventId, Event)]) -> Result<()> {
        let path = self.path.clone();
        let e = |source| Error::Catalog {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO events (id, time, kind, series, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?;
            for (id, ev) in events {
                let body = String::from_utf8(ev.encode_body()).unwrap_or_default();
                st.execute(params![
                    id.as_bytes().as_slice(),
                    ev.time.as_microsecond(),
                    ev.kind.name(),
                    ev.series,
                    body
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
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
