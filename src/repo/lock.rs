//! Locks (`format-spec/lock.md`): snapshot, restore and check take a shared lock; forget,
//! prune and repair an exclusive one. A holder rewrites its lock object every
//! [`REFRESH`]; a lock not rewritten for [`STALE`], or one left by a process of this host
//! that no longer runs, is stale and is taken over with a note. A live holder is never
//! broken.
//!
//! Taking a lock: list `locks/`; if nothing live conflicts, write our lock object, list
//! again, and keep it only if still nothing live conflicts (else delete it and wait or fail).
//! Two writers that race therefore both see each other after writing; at worst both back off
//! and retry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, ObjectKey, Prefix};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::lock::{LockBody, LockKind};
use crate::id::LockId;
use crate::repo::object;

/// A holder rewrites its lock this often.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A lock not rewritten for this long is stale.
pub const STALE: Duration = Duration::from_secs(30 * 60);

/// A lock found in the repository.
#[derive(Debug, Clone)]
pub struct FoundLock {
    /// Its object id.
    pub id: LockId,
    /// Its body, or why it could not be read.
    pub body: std::result::Result<LockBody, String>,
}

impl FoundLock {
    /// One line naming the holder.
    pub fn describe(&self) -> String {
        match &self.body {
            Ok(b) => format!(
                "{} lock held by {} (pid {}) on {} since {}, refreshed {}",
                match b.kind {
                    LockKind::Shared => "shared",
                    LockKind::Exclusive => "exclusive",
                },
                b.command,
                b.pid,
                b.host,
                b.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
                b.refreshed.strftime("%Y-%m-%d %H:%M:%S UTC"),
            ),
            Err(e) => format!("unreadable lock {} ({e})", self.id.short()),
        }
    }

    /// Whether the lock is stale: refreshed longer than [`STALE`] ago, or held by a process
    /// of this host that is gone. An unreadable lock is never stale (`unlock --remove-all`
    /// removes it).
    pub fn is_stale(&self, now: jiff::Timestamp, host: &str) -> bool {
        let Ok(b) = &self.body else { return false };
        let age = now.duration_since(b.refreshed);
        if age.is_negative() {
            return false;
        }
        if age.unsigned_abs() > STALE {
            return true;
        }
        b.host == host && !process_alive(b.pid)
    }

    fn conflicts_with(&self, want: LockKind) -> bool {
        match &self.body {
            Ok(b) => want == LockKind::Exclusive || b.kind == LockKind::Exclusive,
            Err(_) => true,
        }
    }
}

/// Whether a process with this pid runs on this host.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        // EPERM: it exists but belongs to someone else.
        Err(_) => true,
    }
}

/// Every lock in the repository.
pub fn list(b: &dyn Backend, keys: &Keys) -> Result<Vec<FoundLock>> {
    let mut out = Vec::new();
    for info in b.list(Prefix::Locks)? {
        let Ok(id) = info.key.name().parse::<LockId>() else {
            continue;
        };
        let body = match object::load_lock(b, keys, &id) {
            Ok(body) => Ok(body),
            // Deleted between the listing and the read: its holder released it.
            Err(Error::Backend(crate::backend::Error::NotFound { .. })) => continue,
            Err(e) => Err(e.to_string()),
        };
        out.push(FoundLock { id, body });
    }
    Ok(out)
}

/// Removes stale locks; returns them. `all` removes every lock (`unlock --remove-all`).
pub fn remove(b: &dyn Backend, keys: &Keys, all: bool) -> Result<Vec<FoundLock>> {
    let now = jiff::Timestamp::now();
    let host = crate::snapshot::default_host();
    let mut removed = Vec::new();
    for l in list(b, keys)? {
        if all || l.is_stale(now, &host) {
            b.delete(&ObjectKey::lock(&l.id))?;
            removed.push(l);
        }
    }
    Ok(removed)
}

#[derive(Debug)]
struct Held {
    current: LockId,
    body: LockBody,
    last_refresh: Instant,
}

/// A held lock. Dropping it deletes the lock object.
#[derive(Debug)]
pub struct Lock {
    backend: Arc<dyn Backend>,
    kind: LockKind,
    held: Arc<Mutex<Held>>,
    stop: Option<crossbeam_channel::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

/// A handle to check that a held lock is still ours (a writer checks before it writes its
/// snapshot object, a pruner before it deletes).
#[derive(Clone)]
pub struct LockCheck {
    backend: Arc<dyn Backend>,
    held: Arc<Mutex<Held>>,
}

impl std::fmt::Debug for LockCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockCheck(..)")
    }
}

impl LockCheck {
    /// Fails unless the lock object still exists and was refreshed within half the stale
    /// time by this process's monotonic clock, so that no other process can have taken it
    /// over (a suspended or partitioned holder).
    pub fn ensure_held(&self) -> Result<()> {
        let g = self
            .held
            .lock()
            .map_err(|_| Error::Internal("lock state poisoned".into()))?;
        if g.last_refresh.elapsed() > STALE / 2 {
            return Err(Error::Internal(format!(
                "our lock was last refreshed {} s ago and may have been taken over; stopping",
                g.last_refresh.elapsed().as_secs()
            )));
        }
        match self.backend.get(&ObjectKey::lock(&g.current)) {
            Ok(_) => Ok(()),
            Err(crate::backend::Error::NotFound { .. }) => Err(Error::Internal(
                "our lock was removed by another process; stopping".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// A lock that allows deleting: only prune, forget and repair hold one.
#[derive(Debug)]
pub struct ExclusiveLock(Lock);

impl ExclusiveLock {
    /// Fails unless the lock is still ours and was refreshed recently enough that no other
    /// process can have taken it over: call before deleting anything.
    pub fn ensure_held(&self) -> Result<()> {
        self.0.ensure_held()
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    crate::crypto::random_fill(&mut b);
    hex::encode(b)
}

impl Lock {
    /// Takes a lock of `kind` for `command`, waiting up to `wait` for conflicting holders to
    /// finish. Stale locks are removed first, each reported through `note`.
    pub fn acquire(
        backend: Arc<dyn Backend>,
        keys: Arc<Keys>,
        kind: LockKind,
        command: &str,
        wait: Duration,
        note: &mut dyn FnMut(String),
    ) -> Result<Self> {
        let started = Instant::now();
        let host = crate::snapshot::default_host();
        let mut pause = Duration::from_millis(200);
        loop {
            let now = jiff::Timestamp::now();
            let mut live = Vec::new();
            for l in list(backend.as_ref(), &keys)? {
                if l.is_stale(now, &host) {
                    note(format!("removing stale lock: {}", l.describe()));
                    backend.delete(&ObjectKey::lock(&l.id))?;
                } else {
                    live.push(l);
                }
            }
            let blocker = match live.iter().find(|l| l.conflicts_with(kind)) {
                Some(l) => Some(l.clone()),
                None => {
                    let body = LockBody {
                        kind,
                        host: host.clone(),
                        pid: std::process::id(),
                        command: command.to_owned(),
                        created: now,
                        refreshed: now,
                        nonce: random_hex(),
                    };
                    let id = object::store_lock(backend.as_ref(), &keys, &body)?;
                    let again = list(backend.as_ref(), &keys)?;
                    let now = jiff::Timestamp::now();
                    match again
                        .into_iter()
                        .find(|l| l.id != id && !l.is_stale(now, &host) && l.conflicts_with(kind))
                    {
                        None => {
                            tracing::debug!(lock = %id, ?kind, command, "lock acquired");
                            return Ok(Self::hold(backend, keys, kind, id, body));
                        }
                        Some(l) => {
                            backend.delete(&ObjectKey::lock(&id))?;
                            Some(l)
                        }
                    }
                }
            };
            if let Some(l) = blocker {
                let waited = started.elapsed();
                if waited >= wait {
                    return Err(Error::RepoLocked {
                        holder: l.describe(),
                        waited_secs: waited.as_secs(),
                    });
                }
                tracing::info!(holder = %l.describe(), waited_secs = waited.as_secs(), "waiting for a lock");
                // Back off with jitter so that two waiters do not retry in step.
                let mut j = [0u8; 1];
                crate::crypto::random_fill(&mut j);
                let sleep = (pause + Duration::from_millis(u64::from(j[0]) * 4))
                    .min(wait.saturating_sub(waited));
                std::thread::sleep(sleep);
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }

    fn hold(
        backend: Arc<dyn Backend>,
        keys: Arc<Keys>,
        kind: LockKind,
        id: LockId,
        body: LockBody,
    ) -> Self {
        let held = Arc::new(Mutex::new(Held {
            current: id,
            body,
            last_refresh: Instant::now(),
        }));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let (b, h) = (backend.clone(), held.clone());
        let refresher = std::thread::spawn(move || {
            while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(REFRESH)
            {
                let (old, mut body) = match h.lock() {
                    Ok(g) => (g.current, g.body.clone()),
                    Err(_) => return,
                };
                body.refreshed = jiff::Timestamp::now();
                // A failed refresh is retried at the next tick; `ensure_held` refuses to
                // delete once the last success is too old.
                match object::store_lock(b.as_ref(), &keys, &body) {
                    Ok(new) => {
                        let _ = b.delete(&ObjectKey::lock(&old));
                        tracing::debug!(lock = %new, replaces = %old, "lock refreshed");
                        if let Ok(mut g) = h.lock() {
                            g.current = new;
                            g.body = body;
                            g.last_refresh = Instant::now();
                        }
                    }
                    Err(e) => tracing::warn!("lock refresh failed, retrying in {REFRESH:?}: {e}"),
                }
            }
        });
        Self {
            backend,
            kind,
            held,
            stop: Some(stop),
            refresher: Some(refresher),
        }
    }

    /// Shared or exclusive.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// This lock as the capability to delete, if it is exclusive.
    pub fn into_exclusive(self) -> std::result::Result<ExclusiveLock, Self> {
        if self.kind == LockKind::Exclusive {
            Ok(ExclusiveLock(self))
        } else {
            Err(self)
        }
    }

    /// A handle to check, later, that this lock is still held.
    pub fn check(&self) -> LockCheck {
        LockCheck {
            backend: self.backend.clone(),
            held: self.held.clone(),
        }
    }

    fn ensure_held(&self) -> Result<()> {
        self.check().ensure_held()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        if let Ok(g) = self.held.lock() {
            match self.backend.delete(&ObjectKey::lock(&g.current)) {
                Ok(()) => tracing::debug!(lock = %g.current, "lock released"),
                // Left behind, it is taken over once stale. Info, not a warning: when the
                // storage is gone the run's own error already says so, once.
                Err(e) => tracing::info!(lock = %g.current, "could not remove our lock: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(host: &str, pid: u32, age_secs: i64) -> FoundLock {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(age_secs);
        FoundLock {
            id: LockId([1; 32]),
            body: Ok(LockBody {
                kind: LockKind::Shared,
                host: host.into(),
                pid,
                command: "snapshot".into(),
                created: t,
                refreshed: t,
                nonce: "00".into(),
            }),
        }
    }

    #[test]
    fn staleness() {
        let now = jiff::Timestamp::now();
        let me = std::process::id();
        // Fresh, this process: live.
        assert!(!body("h", me, 10).is_stale(now, "h"));
        // Fresh, a pid that does not run on this host: stale at once.
        assert!(body("h", 0x7fff_fff0, 10).is_stale(now, "h"));
        // Fresh, another host: live whatever the pid.
        assert!(!body("other", 0x7fff_fff0, 10).is_stale(now, "h"));
        // Not refreshed for longer than STALE: stale anywhere.
        let old = i64::try_from(STALE.as_secs()).unwrap() + 60;
        assert!(body("other", me, old).is_stale(now, "h"));
        // Unreadable: never stale.
        let bad = FoundLock {
            id: LockId([2; 32]),
            body: Err("x".into()),
        };
        assert!(!bad.is_stale(now, "h"));
        assert!(bad.conflicts_with(LockKind::Shared));
    }
}
