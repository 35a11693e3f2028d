//! Free space on the file system holding the queue.
//!
//! sled treats a full disk as a fatal error ([`super::store`]); refusing appends while
//! free space is below `queue.min_free_bytes` keeps it from meeting one. The check is
//! a `statvfs` call per appended batch, on the enrichment thread, never on the request
//! path.

use std::path::Path;

/// Bytes available to an unprivileged writer on the file system holding `path`;
/// `None` when it cannot be told (the check is then skipped, not failed).
pub fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: `c` is a valid NUL-terminated path and `st` is written by statvfs
        // before it is read, only when it returns 0.
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: statvfs returned 0, so it filled `st`.
        let st = unsafe { st.assume_init() };
        // The field types vary between platforms; on some they are u64 already.
        #[allow(clippy::unnecessary_cast)]
        Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl super::Queue {
    /// Whether the queue's file system has less free space than `queue.min_free_bytes`:
    /// what else is written beside the queue (delivery state) stops growing then too.
    pub fn below_disk_floor(&self) -> bool {
        let cfg = &self.inner.cfg;
        cfg.min_free_bytes > 0 && free_bytes(&cfg.path).is_some_and(|f| f < cfg.min_free_bytes)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_free_space_of_an_existing_directory_is_known() {
        let dir = tempfile::tempdir().unwrap();
        assert!(super::free_bytes(dir.path()).is_some_and(|n| n > 0));
        assert_eq!(super::free_bytes(&dir.path().join("missing/deeper")), None);
    }
}
