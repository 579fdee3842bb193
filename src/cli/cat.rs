//! `larder cat`: print a decrypted repository object as JSON, for debugging.

use anyhow::Result;
use larder::backend::ObjectKey;
use larder::format::BlobKind;
use larder::format::content_list::ContentListBlob;
use larder::id::{BlobId, IndexId, PackId};
use larder::repo::object;
use larder::snapshot::{Selector, select};
use serde_json::json;

use super::{Ctx, output};

/// Which object.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Object type: config, keys, snapshot, index, pack or blob.
    #[arg(value_parser = ["config", "keys", "snapshot", "index", "pack", "blob"])]
    kind: String,
    /// Object id (a unique prefix for snapshots; `latest` too).
    id: Option<String>,
}

fn id_arg<T: std::str::FromStr>(id: Option<&str>, what: &str) -> Result<T> {
    let s = id.ok_or_else(|| larder::Error::InvalidArgument(format!("cat {what} needs an id")))?;
    s.parse().map_err(|_| {
        larder::Error::InvalidArgument(format!("`{s}` is not a {what} id (64 hex digits)")).into()
    })
}

/// Runs `cat`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let b = repo.backend().as_ref();
    let v = match a.kind.as_str() {
        "config" => serde_json::to_value(repo.config())?,
        "keys" => {
            let slots = repo.key_slots()?;
            json!(slots
                .iter()
                .map(|(id, s)| json!({"id": id, "host": s.host, "created": s.created, "kdf": s.kdf}))
                .collect::<Vec<_>>())
        }
        "snapshot" => {
            let sel = Selector {
                id: a.id.clone(),
                ..Selector::default()
            };
            let (id, _) = select(repo.catalog().snapshots()?, &sel)?;
            // Read it from the repository, not the catalog: this is a debugging view.
            json!({"id": id, "snapshot": object::load_snapshot(b, repo.keys(), &id)?})
        }
        "index" => {
            let id: IndexId = id_arg(a.id.as_deref(), "index segment")?;
            serde_json::to_value(object::load_index_segment(b, repo.keys(), &id)?)?
        }
        "pack" => {
            let id: PackId = id_arg(a.id.as_deref(), "pack")?;
            let bytes = object::read_named(b, &ObjectKey::pack(&id), id.as_bytes())?;
            let header = larder::pack::reader::read_header(repo.keys(), &id, &bytes)?;
            json!({"id": id, "length": bytes.len(), "blobs": header.blobs})
        }
        "blob" => {
            let id: BlobId = id_arg(a.id.as_deref(), "blob")?;
            let at = repo.locate(&id)?;
            let plain = repo.load_blob(&id, at.entry.kind)?;
            let mut v =
                json!({"id": id, "pack": at.pack, "entry": at.entry, "length": plain.len()});
            if at.entry.kind == BlobKind::ContentList {
                let list = ContentListBlob::decode(&plain)
                    .map_err(|e| larder::Error::corrupt(format!("content list {id}"), e))?;
                v["content_list"] = serde_json::to_value(list)?;
            }
            if at.entry.kind == BlobKind::Tree {
                let tree = larder::format::tree::Tree::decode(&plain)
                    .map_err(|e| larder::Error::corrupt(format!("tree {id}"), e))?;
                v["tree"] = tree
                    .entries
                    .iter()
                    .map(|e| super::tree::entry_json(&String::from_utf8_lossy(&e.name), e))
                    .collect();
            }
            v
        }
        other => {
            return Err(
                larder::Error::InvalidArgument(format!("unknown object type `{other}`")).into(),
            );
        }
    };
    output::json(&v)
}
