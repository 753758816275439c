//! Whether the holder of a lease is known to be gone, so its lease can be taken over before
//! it expires (a local run killed with SIGKILL resumes at once). The engine records the
//! host and process id in every lease it takes; the adapter knows how to check them.

/// Answers for leases taken on this host.
pub trait HolderLiveness: Send + Sync {
    /// The host this process runs on, recorded in the leases it takes ("" when unknown).
    fn host(&self) -> String;
    /// Whether process `pid` on `host` is known to have ended.
    fn is_gone(&self, host: &str, pid: u32) -> bool;
}

/// Nothing is known about other processes: a lease simply expires (Lambda containers).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExpiryOnly;

impl HolderLiveness for ExpiryOnly {
    fn host(&self) -> String {
        String::new()
    }
    fn is_gone(&self, _host: &str, _pid: u32) -> bool {
        false
    }
}
