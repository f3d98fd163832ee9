//! SQLite: the write-ahead log is copied back into the database file (a checkpoint) by a
//! thread of the store's own, on a connection of its own, instead of by whichever commit
//! finds `store.sqlite_wal_checkpoint_pages` pages in the log not yet copied (SQLite's own
//! way). A commit is durable once it is in the log, so durability does not change: what
//! moves is the time a checkpoint takes (copying the pages, syncing the file), which no
//! longer sits inside a write transaction's answer and runs on the other core meanwhile.
//!
//! Every pooled connection reports the log's size after each commit through
//! `sqlite3_wal_hook` (which also turns SQLite's automatic checkpoint off for that
//! connection). Once the pages not yet copied reach the threshold the hook wakes the
//! thread, which runs a passive checkpoint: it copies what no reader still needs and never
//! blocks a reader or a writer. Should they reach four times the threshold while the thread
//! has not yet taken up its last call (it is held up), the committing connection
//! checkpoints itself, as SQLite would.

use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

/// What the hook and the thread share. Leaked: a pooled connection may outlive the store
/// by a moment, and its hook must still find this (a few bytes per store opened).
struct Shared {
    threshold: c_int,
    wanted: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    /// The log's size in frames and how many of them were copied, at the latest
    /// checkpoint. A log shorter than `log` has been restarted since.
    log: AtomicI32,
    copied: AtomicI32,
    /// Checkpoints the thread has run that copied pages.
    done: AtomicU64,
}

impl Shared {
    /// Frames of a log of `frames` not yet copied back (as far as this store knows).
    fn pending(&self, frames: c_int) -> c_int {
        if frames < self.log.load(Ordering::Relaxed) {
            frames
        } else {
            frames - self.copied.load(Ordering::Relaxed)
        }
    }

    /// A passive checkpoint on `db`, remembering how far it got; whether it copied pages.
    ///
    /// # Safety
    /// `db` is an open connection used by no other thread meanwhile.
    unsafe fn checkpoint(&self, db: *mut ffi::sqlite3, name: *const c_char) -> bool {
        let (mut log, mut copied) = (0, 0);
        let rc = ffi::sqlite3_wal_checkpoint_v2(db, name, ffi::SQLITE_CHECKPOINT_PASSIVE, &mut log, &mut copied);
        if rc == ffi::SQLITE_OK {
            self.log.store(log, Ordering::Relaxed);
            self.copied.store(copied, Ordering::Relaxed);
        }
        rc == ffi::SQLITE_OK && copied > 0
    }
}

/// The store's checkpoint thread; it stops (and closes its connection) when the last
/// clone of the store is dropped.
pub(crate) struct Checkpointer {
    shared: &'static Shared,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("threshold", &self.shared.threshold)
            .field("done", &self.shared.done.load(Ordering::Relaxed))
            .finish()
    }
}

/// A connection owned by the checkpoint thread.
struct Conn(*mut ffi::sqlite3);

// SAFETY: the connection is used and closed by the checkpoint thread alone.
unsafe impl Send for Conn {}

extern "C" fn wal_hook(arg: *mut c_void, db: *mut ffi::sqlite3, name: *const c_char, frames: c_int) -> c_int {
    // SAFETY: `arg` is the leaked `Shared` installed by `install_hook`.
    let shared = unsafe { &*(arg as *const Shared) };
    let pending = shared.pending(frames);
    if pending < shared.threshold {
        return ffi::SQLITE_OK;
    }
    let inline = {
        let mut wanted = shared.wanted.lock().unwrap_or_else(|e| e.into_inner());
        // The thread has stopped, or has not yet taken up the last call while the log grew
        // past four times the threshold: this connection checkpoints itself.
        let behind = *wanted && pending >= shared.threshold.saturating_mul(4);
        if shared.stop.load(Ordering::Relaxed) || behind {
            true
        } else {
            *wanted = true;
            shared.wake.notify_one();
            false
        }
    };
    if inline {
        // SAFETY: SQLite calls the hook on `db` after a commit, where a checkpoint is
        // allowed (its own hook does the same).
        unsafe { shared.checkpoint(db, name) };
    }
    ffi::SQLITE_OK
}

impl Checkpointer {
    /// Starts the thread with its own connection to the database file `path` (created if
    /// missing, before the pool opens it); `None` when that fails, and the pool's
    /// connections then keep SQLite's own checkpoints.
    pub(crate) fn start(path: &std::path::Path, threshold_pages: u32) -> Option<Checkpointer> {
        let cpath = CString::new(path.to_str()?).ok()?;
        let mut db = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path and an out pointer; the handle is closed below on
        // failure, or by the thread.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                cpath.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        if rc != ffi::SQLITE_OK {
            // SAFETY: sqlite3_close accepts the handle of a failed open.
            unsafe { ffi::sqlite3_close(db) };
            return None;
        }
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            threshold: threshold_pages.clamp(1, c_int::MAX as u32 / 4) as c_int,
            wanted: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            log: AtomicI32::new(0),
            copied: AtomicI32::new(0),
            done: AtomicU64::new(0),
        }));
        let conn = Conn(db);
        let spawned = std::thread::Builder::new()
            .name("kehu-checkpoint".into())
            .spawn(move || {
                let conn = conn;
                loop {
                    {
                        let mut wanted = shared.wanted.lock().unwrap_or_else(|e| e.into_inner());
                        while !*wanted && !shared.stop.load(Ordering::Relaxed) {
                            wanted = shared.wake.wait(wanted).unwrap_or_else(|e| e.into_inner());
                        }
                        if shared.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        *wanted = false;
                    }
                    // SAFETY: this thread's own connection. A connection that has not read
                    // the database yet does not know it is in WAL mode (a checkpoint would
                    // do nothing): one read of the schema's version first.
                    let copied = unsafe {
                        ffi::sqlite3_exec(conn.0, c"PRAGMA schema_version".as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut());
                        shared.checkpoint(conn.0, std::ptr::null())
                    };
                    if copied {
                        shared.done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // SAFETY: closed once, by its owner, with no statement left.
                unsafe { ffi::sqlite3_close(conn.0) };
            });
        match spawned {
            Ok(thread) => Some(Checkpointer {
                shared,
                thread: Some(thread),
            }),
            Err(_) => None,
        }
    }

    /// What `install_hook` needs, as a plain address (`after_connect` must be `Send`).
    pub(crate) fn hook_arg(&self) -> usize {
        self.shared as *const Shared as usize
    }

    /// Checkpoints the thread has run so far that copied pages.
    pub(crate) fn done(&self) -> u64 {
        self.shared.done.load(Ordering::Relaxed)
    }
}

/// Makes `db` (a pooled connection) report to the checkpointer after each commit.
///
/// # Safety
/// `db` is an open connection not used by another thread during the call; `arg` came from
/// `hook_arg` of a checkpointer (whose `Shared` is leaked, so it stays valid).
pub(crate) unsafe fn install_hook(db: *mut ffi::sqlite3, arg: usize) {
    ffi::sqlite3_wal_hook(db, Some(wal_hook), arg as *mut c_void);
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // From now on a commit past the threshold checkpoints itself (`wal_hook` sees it).
        self.shared.stop.store(true, Ordering::Relaxed);
        {
            let _wanted = self.shared.wanted.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
