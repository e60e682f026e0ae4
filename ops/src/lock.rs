//! The state lock held for the length of a transaction: a lease taken from
//! the [`Backend`], renewed in the background, released on drop, and checked
//! before every change ([`LockGuard::lost`]).
//!
//! Leases run on the system clock ([`fleetform_state::now`]), never on
//! [`crate::clock`] that `FLEETFORM_NOW` moves: every run sharing the state
//! judges a lease's expiry, and must judge it alike.

use crate::{Error, Reporter, Store};
use fleetform_state::{Backend, Lease, StateError};
use std::sync::{mpsc, Arc, Mutex};

/// Seconds a lease lasts without renewal by default; renewed every third of it.
const LEASE_SECS: i64 = 60;

/// Seconds a lease lasts without renewal: `FLEETFORM_LOCK_LEASE_SECS` (at
/// least 3, so that renewing every third of it is at least once a second),
/// else 60. A shorter lease frees the state sooner after a crash.
fn lease_secs() -> i64 {
    std::env::var("FLEETFORM_LOCK_LEASE_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(LEASE_SECS, |secs| secs.clamp(3, 24 * 3600))
}

/// Holds the lease for the length of a command, renewing it in the
/// background once [`LockGuard::keep_alive`] is called. Dropping it releases
/// the lock; a failure to renew or release is reported as a warning.
pub struct LockGuard<'a> {
    backend: &'a dyn Backend,
    lease: Arc<Mutex<Option<Lease>>>,
    reporter: Arc<dyn Reporter>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl<'a> LockGuard<'a> {
    /// Takes the lock, or [`Error::Locked`] naming who holds it.
    pub fn take(
        backend: &'a dyn Backend,
        reporter: Arc<dyn Reporter>,
    ) -> Result<LockGuard<'a>, Error> {
        let now = fleetform_state::now();
        match backend.lock(&fleetform_state::holder_id(), lease_secs(), now) {
            Ok(lease) => Ok(LockGuard {
                backend,
                lease: Arc::new(Mutex::new(Some(lease))),
                reporter,
                stop: None,
                renewer: None,
            }),
            Err(StateError::Locked(info)) => Err(Error::Locked { info, now }),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the lease every third of its length until dropped. The thread
    /// waits on a channel with a timeout: a timer, not synchronisation.
    /// `backend` must be the store this guard locked.
    pub fn keep_alive(&mut self, backend: Store) {
        let (stop, stopped) = mpsc::channel::<()>();
        let lease = Arc::clone(&self.lease);
        let reporter = Arc::clone(&self.reporter);
        self.stop = Some(stop);
        let secs = lease_secs();
        self.renewer = Some(std::thread::spawn(move || {
            let every = std::time::Duration::from_secs((secs / 3).max(1) as u64);
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let mut guard = lease.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(held) = guard.as_mut() {
                    if let Err(e) = backend.renew(held, secs, fleetform_state::now()) {
                        reporter.warning(&format!("cannot renew the state lock: {e}"));
                    }
                }
            }
        }));
    }

    /// Why no further change may be made under this lease, if it is no longer
    /// certainly held: it ran out (this process was stalled past its expiry,
    /// so another run may have broken it), or the lock is no longer it.
    pub fn lost(&self) -> Option<String> {
        lease_lost(self.backend, &self.lease)
    }

    /// The same check as [`LockGuard::lost`], for another thread: `store`
    /// must be the store this guard locked.
    pub(crate) fn watch(&self, store: &Store) -> LeaseWatch {
        LeaseWatch {
            store: Arc::clone(store),
            lease: Arc::clone(&self.lease),
        }
    }
}

/// Why no further change may be made under `lease`, if it is no longer
/// certainly held: it ran out (this process was stalled past its expiry, so
/// another run may have broken it), or the lock is no longer it.
fn lease_lost(backend: &dyn Backend, lease: &Mutex<Option<Lease>>) -> Option<String> {
    let held = match held_here(lease) {
        Ok(held) => held,
        Err(why) => return Some(why),
    };
    // The same lease, whatever its expiry: a renewal whose answer was lost
    // extended it without this process learning the new expiry.
    match backend.lease() {
        Ok(Some(current)) if current.holder == held.holder && current.started == held.started => {
            None
        }
        Ok(Some(current)) => Some(format!("the state lock is now held by {}", current.holder)),
        Ok(None) => Some("the state lock was broken".into()),
        Err(e) => Some(format!("the state lock cannot be read: {e}")),
    }
}

/// The lease as this process knows it, or why it is lost by that alone
/// (released, or run out without a renewal): no read of the store.
fn held_here(lease: &Mutex<Option<Lease>>) -> Result<fleetform_state::LeaseInfo, String> {
    // Copied out: the lock is not held across the read of the store, which
    // every action of an apply makes at once.
    let held = lease
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|lease| lease.info().clone());
    let now = fleetform_state::now();
    let Some(held) = held else {
        return Err("the state lock is no longer held".into());
    };
    if held.expires <= now {
        return Err(format!(
            "the state lock's lease ran out {}s ago without being renewed",
            now - held.expires
        ));
    }
    Ok(held)
}

/// A lock guard's lease check, owned, for the journal's blocking threads.
#[derive(Clone)]
pub(crate) struct LeaseWatch {
    store: Store,
    lease: Arc<Mutex<Option<Lease>>>,
}

impl LeaseWatch {
    pub(crate) fn lost(&self) -> Option<String> {
        lease_lost(&*self.store, &self.lease)
    }

    /// The part of [`LeaseWatch::lost`] that needs no read of the store:
    /// the lease released, or run out without a renewal.
    pub(crate) fn lost_here(&self) -> Option<String> {
        held_here(&self.lease).err()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let lease = self.lease.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(lease) = lease {
            if let Err(e) = self.backend.release(lease) {
                self.reporter.warning(&format!(
                    "cannot release the state lock: {e}; `fleetform unlock` breaks it once expired"
                ));
            }
        }
    }
}
