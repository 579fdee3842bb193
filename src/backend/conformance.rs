//! The backend conformance suite: one set of checks every `Backend` must pass, run on the
//! local backend here and on the S3-compatible server and Azurite by the object-store tests.

use super::{Backend, Error, ObjectKey, Prefix};
use crate::id::{IndexId, PackId};

/// Runs every check against an empty repository root; panics on the first failure (it is a
/// test suite).
#[allow(clippy::panic, clippy::unwrap_used)]
pub fn run(b: &dyn Backend) {
    let pack = ObjectKey::pack(&PackId([0xab; 32]));
    let index = ObjectKey::index(&IndexId([1; 32]));

    // Every backend the suite runs on keeps create-only puts, and says so (a wrapper that
    // forgot to forward the probe would answer for itself).
    assert_eq!(
        b.probe_conditional_writes().unwrap(),
        super::ConditionalWrites::Honoured,
        "create-only puts are honoured"
    );

    assert!(
        b.list(Prefix::Index).unwrap().is_empty(),
        "fresh root lists nothing"
    );
    assert!(
        matches!(b.get(&index), Err(Error::NotFound { .. })),
        "missing get is NotFound"
    );

    b.put(&pack, b"0123456789").unwrap();
    b.put(&index, b"segment").unwrap();
    assert!(
        matches!(b.put(&pack, b"other"), Err(Error::AlreadyExists { .. })),
        "put is create-only"
    );
    assert_eq!(
        b.get(&pack).unwrap(),
        b"0123456789",
        "create-only put kept the first bytes"
    );
    assert_eq!(b.get_range(&pack, 2..5).unwrap(), b"234");
    assert_eq!(b.get_range(&pack, 0..10).unwrap(), b"0123456789");
    assert!(
        b.get_range(&pack, 5..11).is_err(),
        "range past the end fails"
    );

    let packs = b.list(Prefix::Packs).unwrap();
    assert_eq!(packs.len(), 1);
    assert_eq!(packs[0].key, pack);
    assert_eq!(packs[0].size, 10);
    assert_eq!(b.list(Prefix::Index).unwrap()[0].key, index);
    assert!(b.list(Prefix::Snapshots).unwrap().is_empty());

    b.delete(&pack).unwrap();
    b.delete(&pack).unwrap();
    assert!(
        matches!(b.get(&pack), Err(Error::NotFound { .. })),
        "deleted object is gone"
    );
    assert!(b.list(Prefix::Packs).unwrap().is_empty());

    // Staged objects: written in pieces, named at the end, create-only, discarded on drop.
    let staged_key = ObjectKey::pack(&PackId([0xcd; 32]));
    let mut s = b.stage(Prefix::Packs).unwrap();
    s.write(b"hello ").unwrap();
    s.write(b"world").unwrap();
    s.commit(&staged_key).unwrap();
    assert_eq!(b.get(&staged_key).unwrap(), b"hello world");
    let mut again = b.stage(Prefix::Packs).unwrap();
    again.write(b"x").unwrap();
    assert!(
        matches!(again.commit(&staged_key), Err(Error::AlreadyExists { .. })),
        "staged commit is create-only"
    );
    let mut dropped = b.stage(Prefix::Packs).unwrap();
    dropped.write(b"never committed").unwrap();
    drop(dropped);
    assert_eq!(
        b.list(Prefix::Packs).unwrap().len(),
        1,
        "a dropped stage leaves nothing"
    );
    b.delete(&staged_key).unwrap();

    let empty = ObjectKey::from_raw("snapshots/empty");
    b.put(&empty, b"").unwrap();
    assert_eq!(b.get(&empty).unwrap(), b"");
}
