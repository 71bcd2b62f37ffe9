//! Open-file limits: every session holds a socket, and a process may hold only so many.
//!
//! The soft limit is raised to the hard one at start; when a process would still need more
//! descriptors than the hard limit allows, the run stops before opening anything and says
//! how many `--shards` would fit, rather than failing 19,000 sessions in.

/// Descriptors a process needs beside its sessions (stdio, listeners, files, the runtime).
pub const SPARE_FILES: u64 = 64;

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_open_files() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = lim.rlim_max;
    }
    Ok(lim.rlim_cur)
}

/// Checks that `sessions` fit in one process under `limit` open files, or says how many
/// shards would be needed.
pub fn check_fits(sessions: u64, shards: u32, limit: u64) -> Result<(), String> {
    let per_process = sessions.div_ceil(u64::from(shards.max(1)));
    if per_process + SPARE_FILES <= limit {
        return Ok(());
    }
    let usable = limit.saturating_sub(SPARE_FILES).max(1);
    let needed = sessions.div_ceil(usable);
    Err(format!(
        "{sessions} sessions over {shards} process(es) need {} open files each, but a process \
         may hold {limit}; use --shards {needed} or more",
        per_process + SPARE_FILES
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_shards_needed() {
        assert!(check_fits(1000, 1, 20_000).is_ok());
        let e = check_fits(25_000, 1, 20_000).unwrap_err();
        assert!(e.contains("--shards 2"), "{e}");
        assert!(check_fits(25_000, 2, 20_000).is_ok());
        assert!(raise_open_files().unwrap() > 0);
    }
}
