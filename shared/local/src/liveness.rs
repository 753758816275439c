//! Lease holders on this host: a holder whose process is gone from `/proc` cannot be
//! syncing, so its lease is taken over at once (a run killed with SIGKILL resumes
//! immediately instead of after the lease's expiry).

use classy_sync_core::ports::HolderLiveness;

#[derive(Debug, Clone)]
pub struct ProcLiveness {
    host: String,
}

impl ProcLiveness {
    /// This host's name (from the kernel, else `$HOSTNAME`; empty when neither is known,
    /// which turns the check off).
    pub fn new() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_default();
        ProcLiveness { host }
    }
}

impl Default for ProcLiveness {
    fn default() -> Self {
        Self::new()
    }
}

impl HolderLiveness for ProcLiveness {
    fn host(&self) -> String {
        self.host.clone()
    }

    fn is_gone(&self, host: &str, pid: u32) -> bool {
        cfg!(target_os = "linux")
            && !self.host.is_empty()
            && host == self.host
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_gone_and_an_ended_one_is() {
        let l = ProcLiveness::new();
        if !cfg!(target_os = "linux") || l.host().is_empty() {
            return;
        }
        assert!(!l.is_gone(&l.host(), std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(l.is_gone(&l.host(), pid));
        // Another host's processes are not ours to judge.
        assert!(!l.is_gone("some-other-host", pid));
    }
}
