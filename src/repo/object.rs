//! Whole sealed objects (index segments, snapshots, locks, key slots) on their way to and from the
//! backend: every object is named by the BLAKE3 hash of its stored bytes, and that name is
//! checked on every read (invariant 4).

use crate::backend::{self, Backend, ObjectKey};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::ObjectKind;
use crate::format::event::{self, Event};
use crate::format::index_segment::{self, IndexSegment};
use crate::format::lock::{self, LockBody};
use crate::format::snapshot::{self, Snapshot};
use crate::id::{EventId, ID_LEN, IndexId, LockId, SnapshotId, object_hash};

/// Reads an object and checks that its bytes hash to its name.
pub fn read_named(b: &dyn Backend, key: &ObjectKey, name: &[u8; ID_LEN]) -> Result<Vec<u8>> {
    let bytes = b.get(key)?;
    if &object_hash(&bytes) != name {
        return Err(Error::UnauthenticObject {
            object: format!("{key} (content does not match its name)"),
        });
    }
    Ok(bytes)
}

/// Stores a content-named object. If the name is taken the bytes are the same (the name is
/// their hash), so an existing object counts as success.
pub fn put_named(b: &dyn Backend, key: &ObjectKey, bytes: &[u8]) -> Result<()> {
    match b.put(key, bytes) {
        Ok(()) | Err(backend::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reads a sealed object, checks its name and prefix, and opens its body.
fn open_sealed(
    b: &dyn Backend,
    keys: &Keys,
    key: &ObjectKey,
    name: &[u8; ID_LEN],
    magic: &'static [u8; 8],
    kind: ObjectKind,
) -> Result<Vec<u8>> {
    let bytes = read_named(b, key, name)?;
    let sealed =
        crate::format::unwrap(&bytes, magic).map_err(|e| Error::corrupt(key.to_string(), e))?;
    keys.unseal_object(kind, sealed)
        .map_err(|_| Error::UnauthenticObject {
            object: key.to_string(),
        })
}

/// Seals a body, stores it under its content name and returns the name.
fn store_sealed(
    b: &dyn Backend,
    keys: &Keys,
    magic: &[u8; 8],
    kind: ObjectKind,
    body: &[u8],
    key_for: impl FnOnce(&[u8; ID_LEN]) -> ObjectKey,
) -> Result<[u8; ID_LEN]> {
    let bytes = crate::format::wrap(magic, &keys.seal_object(kind, body));
    let name = object_hash(&bytes);
    put_named(b, &key_for(&name), &bytes)?;
    Ok(name)
}

/// Loads, authenticates and decodes an index segment.
pub fn load_index_segment(b: &dyn Backend, keys: &Keys, id: &IndexId) -> Result<IndexSegment> {
    let key = ObjectKey::index(id);
    let plain = open_sealed(
        b,
        keys,
        &key,
        id.as_bytes(),
        index_segment::MAGIC,
        ObjectKind::IndexSegment,
    )?;
    IndexSegment::decode(&plain).map_err(|e| Error::corrupt(key.to_string(), e))
}

/// Seals and stores an index segment; returns its id.
pub fn store_index_segment(b: &dyn Backend, keys: &Keys, seg: &IndexSegment) -> Result<IndexId> {
    store_sealed(
        b,
        keys,
        index_segment::MAGIC,
        ObjectKind::IndexSegment,
        &seg.encode(),
        |n| ObjectKey::index(&IndexId(*n)),
    )
    .map(IndexId)
}

/// Loads, authenticates and decodes a snapshot.
pub fn load_snapshot(b: &dyn Backend, keys: &Keys, id: &SnapshotId) -> Result<Snapshot> {
    let key = ObjectKey::snapshot(id);
    let plain = open_sealed(
        b,
        keys,
        &key,
        id.as_bytes(),
        snapshot::MAGIC,
        ObjectKind::Snapshot,
    )?;
    Snapshot::decode_body(&plain).map_err(|e| Error::corrupt(key.to_string(), e))
}

/// Seals and stores a snapshot; returns its id.
pub fn store_snapshot(b: &dyn Backend, keys: &Keys, snap: &Snapshot) -> Result<SnapshotId> {
    store_sealed(
        b,
        keys,
        snapshot::MAGIC,
        ObjectKind::Snapshot,
        &snap.encode_body(),
        |n| ObjectKey::snapshot(&SnapshotId(*n)),
    )
    .map(SnapshotId)
}

/// Loads, authenticates and decodes a lock object.
pub fn load_lock(b: &dyn Backend, keys: &Keys, id: &LockId) -> Result<LockBody> {
    let key = ObjectKey::lock(id);
    let plain = open_sealed(b, keys, &key, id.as_bytes(), lock::MAGIC, ObjectKind::Lock)?;
    LockBody::decode_body(&plain).map_err(|e| Error::corrupt(key.to_string(), e))
}

/// Seals and stores a lock object; returns its id.
pub fn store_lock(b: &dyn Backend, keys: &Keys, body: &LockBody) -> Result<LockId> {
    store_sealed(
        b,
        keys,
        lock::MAGIC,
        ObjectKind::Lock,
        &body.encode_body(),
        |n| ObjectKey::lock(&LockId(*n)),
    )
    .map(LockId)
}

/// Loads, authenticates and decodes an event.
pub fn load_event(b: &dyn Backend, keys: &Keys, id: &EventId) -> Result<Event> {
    let key = ObjectKey::event(id);
    let plain = open_sealed(
        b,
        keys,
        &key,
        id.as_bytes(),
        event::MAGIC,
        ObjectKind::Event,
    )?;
    Event::decode_body(&plain).map_err(|e| Error::corrupt(key.to_string(), e))
}

/// Seals and stores an event; returns its id.
pub fn store_event(b: &dyn Backend, keys: &Keys, e: &Event) -> Result<EventId> {
    store_sealed(
        b,
        keys,
        event::MAGIC,
        ObjectKind::Event,
        &e.encode_body(),
        |n| ObjectKey::event(&EventId(*n)),
    )
    .map(EventId)
}
