//! A repository in a local directory.
//!
//! Every put goes through one path: write a temporary file beside the target, fsync it,
//! hard-link it to its final name (create-only: the link fails if the name exists), remove
//! the temporary name and fsync the directory, so a reported success survives a power loss
//! and a crash leaves at worst a `.tmp-*` file that listings ignore.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Backend, Error, ObjectInfo, ObjectKey, Prefix, StagedObject};

/// Temporary files start with this and are never listed.
const TMP_PREFIX: &str = ".tmp-";

/// Write buffer of a staged pack.
const STAGE_BUFFER: usize = 1024 * 1024;

/// How many pack files stay open for range reads.
const OPEN_FILES: usize = 64;

/// A repository rooted at a directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    open: Mutex<HashMap<ObjectKey, Arc<File>>>,
}

fn io(op: &'static str, key: impl ToString) -> impl FnOnce(std::io::Error) -> Error {
    move |source| match source.kind() {
        ErrorKind::NotFound if op != "write" => Error::NotFound {
            key: key.to_string(),
        },
        _ => Error::Io {
            op,
            key: key.to_string(),
            source,
        },
    }
}

impl LocalBackend {
    /// Opens an existing directory (whether it holds a repository is checked by the caller).
    pub fn open(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the directory layout for a new repository: the root, `keys/`, `index/`,
    /// `snapshots/` and all 256 `packs/xx/` folders, each made durable.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, Error> {
        let b = Self::open(root);
        let root_s = b.root.display().to_string();
        fs::create_dir_all(&b.root).map_err(io("write", &root_s))?;
        for p in [
            Prefix::Keys,
            Prefix::Index,
            Prefix::Snapshots,
            Prefix::Locks,
            Prefix::Events,
            Prefix::Packs,
        ] {
            let d = b.root.join(p.as_str());
            mkdir(&d)?;
        }
        let packs = b.root.join(Prefix::Packs.as_str());
        for i in 0..=255u8 {
            mkdir(&packs.join(hex::encode([i])))?;
        }
        sync_dir(&packs)?;
        sync_dir(&b.root)?;
        if let Some(parent) = b.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(b)
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn file(&self, key: &ObjectKey) -> Result<Arc<File>, Error> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = open.get(key) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(self.path(key)).map_err(io("read", key))?);
        if open.len() >= OPEN_FILES {
            open.clear();
        }
        open.insert(key.clone(), f.clone());
        Ok(f)
    }
}

/// A pack being written into a temporary file in its prefix folder.
#[derive(Debug)]
struct StagedFile {
    root: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl StagedObject for StagedFile {
    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let tmp = self.tmp.display().to_string();
        match self.file.as_mut() {
            Some(f) => f.write_all(data).map_err(io("write", tmp)),
            None => Ok(()),
        }
    }

    fn commit(mut self: Box<Self>, key: &ObjectKey) -> Result<(), Error> {
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let f = f
            .into_inner()
            .map_err(|e| io("write", key)(e.into_error()))?;
        f.sync_all().map_err(io("write", key))?;
        drop(f);
        let target = self.root.join(key.as_str());
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(io("write", key))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let linked = fs::hard_link(&self.tmp, &target);
        let _ = fs::remove_file(&self.tmp);
        match linked {
            Ok(()) => sync_dir(&dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::AlreadyExists {
                key: key.to_string(),
            }),
            Err(e) => Err(io("write", key)(e)),
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn tmp_name(dir: &Path) -> PathBuf {
    let mut rnd = [0u8; 12];
    crate::crypto::random_fill(&mut rnd);
    dir.join(format!("{TMP_PREFIX}{}", hex::encode(rnd)))
}

fn mkdir(d: &Path) -> Result<(), Error> {
    match fs::create_dir(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("write", d.display())(e)),
    }
}

fn sync_dir(d: &Path) -> Result<(), Error> {
    File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(io("write", d.display()))
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<(), Error> {
        let target = self.path(key);
        let dir = target.parent().unwrap_or(&self.root).to_path_buf();
        let tmp = tmp_name(&dir);
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        };
        let mut written = write();
        if matches!(&written, Err(e) if e.kind() == ErrorKind::NotFound)
            && dir.starts_with(&self.root)
        {
            // A folder dropped by a copy tool (git and some sync tools drop empty folders):
            // make it, durably, and try once more.
            fs::create_dir_all(&dir).map_err(io("write", key))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
            written = write();
        }
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("write", key)(e));
        }
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists {
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(io("write", key)(e)),
        }
        sync_dir(&dir)
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, Error> {
        fs::read(self.path(key)).map_err(io("read", key))
    }

    fn get_range(&self, key: &ObjectKey, range: std::ops::Range<u64>) -> Result<Vec<u8>, Error> {
        let f = self.file(key)?;
        let len =
            usize::try_from(range.end.saturating_sub(range.start)).map_err(|_| Error::Io {
                op: "read",
                key: key.to_string(),
                source: std::io::Error::new(ErrorKind::InvalidInput, "range too large"),
            })?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, range.start).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                Error::Io {
                    op: "read",
                    key: key.to_string(),
                    source: std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("object is shorter than byte {}", range.end),
                    ),
                }
            } else {
                io("read", key)(e)
            }
        })?;
        Ok(buf)
    }

    fn list(&self, prefix: Prefix) -> Result<Vec<ObjectInfo>, Error> {
        let dir = self.root.join(prefix.as_str());
        let mut out = Vec::new();
        let mut dirs = vec![(dir, prefix.as_str().to_owned())];
        while let Some((d, key_prefix)) = dirs.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io("list", &key_prefix)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io("list", &key_prefix))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    // Deleted since the directory was read (another process released its
                    // lock): it is not listed, as if the listing had come a moment later.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(io("list", &key_prefix)(e)),
                };
                if meta.is_dir() {
                    if prefix == Prefix::Packs {
                        dirs.push((entry.path(), format!("{key_prefix}{name}/")));
                    }
                } else {
                    out.push(ObjectInfo {
                        key: ObjectKey::from_raw(format!("{key_prefix}{name}")),
                        size: meta.len(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn stage(&self, prefix: Prefix) -> Result<Box<dyn StagedObject>, Error> {
        let dir = self.root.join(prefix.as_str());
        if !dir.is_dir() {
            mkdir(&dir)?;
        }
        let tmp = tmp_name(&dir);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("write", tmp.display()))?;
        Ok(Box::new(StagedFile {
            root: self.root.clone(),
            tmp,
            file: Some(BufWriter::with_capacity(STAGE_BUFFER, file)),
        }))
    }

    fn delete(&self, key: &ObjectKey) -> Result<(), Error> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        match fs::remove_file(self.path(key)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("delete", key)(e)),
        }
        sync_dir(self.path(key).parent().unwrap_or(&self.root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_survives_objects_deleted_meanwhile() {
        // Locks come and go while others list them (tests/prune.rs once failed with
        // "locks/ not found" when an entry vanished between readdir and stat).
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::create(dir.path().join("repo")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (locks, stop) = (dir.path().join("repo/locks"), stop.clone());
            std::thread::spawn(move || {
                // Plain files, no fsync: many entries vanish per listing.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for i in 0..64 {
                        let _ = fs::write(locks.join(format!("{i:064x}")), b"l");
                    }
                    for i in 0..64 {
                        let _ = fs::remove_file(locks.join(format!("{i:064x}")));
                    }
                }
            })
        };
        for _ in 0..3000 {
            b.list(Prefix::Locks).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
    }

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::create(dir.path().join("repo")).unwrap();
        super::super::conformance::run(&b);
    }

    #[test]
    fn temp_files_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::create(dir.path().join("repo")).unwrap();
        fs::write(dir.path().join("repo/index/.tmp-123"), b"x").unwrap();
        assert!(b.list(Prefix::Index).unwrap().is_empty());
    }
}
