//! Identifiers: 32-byte newtypes for every named thing in a repository.
//!
//! Blob ids are keyed BLAKE3 over (kind, plaintext) (`format-spec/blob.md`); every stored
//! object (pack, index segment, snapshot, key slot) is named by the plain BLAKE3 hash of its
//! stored bytes (`format-spec/repository.md`). Hex appears only at the edges: `Display`,
//! `FromStr` and serde.

use std::fmt;
use std::str::FromStr;

/// Length in bytes of every id.
pub const ID_LEN: usize = 32;

/// A string that is not 64 hex digits where an id was expected.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a valid id (64 hex digits)")]
pub struct ParseIdError(pub String);

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// The id as raw bytes.
            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }

            /// Lowercase hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits, as shown in tables.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            /// Builds an id from a slice that must be exactly 32 bytes long.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; ID_LEN]>::try_from(b).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut out).map_err(|_| ParseIdError(s.to_owned()))?;
                Ok(Self(out))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A blob: keyed BLAKE3 of its kind and plaintext.
    BlobId
);
define_id!(
    /// A pack file: BLAKE3 of its stored bytes.
    PackId
);
define_id!(
    /// An index segment: BLAKE3 of its stored bytes.
    IndexId
);
define_id!(
    /// A snapshot object: BLAKE3 of its stored bytes.
    SnapshotId
);
define_id!(
    /// A key slot: BLAKE3 of its stored bytes.
    KeyId
);
define_id!(
    /// A lock object: BLAKE3 of its stored bytes.
    LockId
);
define_id!(
    /// An event object: BLAKE3 of its stored bytes.
    EventId
);
define_id!(
    /// A repository, chosen at random by `init` and bound into every seal.
    RepoId
);

/// Names a stored object by the BLAKE3 hash of its bytes (unkeyed: anyone holding the bytes
/// can check the name, and the bytes are ciphertext, so the name leaks nothing).
pub fn object_hash(stored: &[u8]) -> [u8; ID_LEN] {
    *blake3::hash(stored).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = BlobId([0xab; 32]);
        let s = id.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<BlobId>().unwrap(), id);
        assert_eq!(id.short(), "abababab");
        assert!("xyz".parse::<BlobId>().is_err());
        assert!("ab".repeat(31).parse::<BlobId>().is_err());
    }

    #[test]
    fn serde_as_hex() {
        let id = PackId([1; 32]);
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, format!("\"{}\"", "01".repeat(32)));
        assert_eq!(serde_json::from_str::<PackId>(&j).unwrap(), id);
    }
}
