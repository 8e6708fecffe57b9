//! The open-file limit: as high as the system lets this process go.
//!
//! Every client connection and every peer connection is a file descriptor.
//! The soft limit is often 1024 while the hard limit allows far more;
//! nginx has `worker_rlimit_nofile` for this, switchyard raises the soft
//! limit to the hard one at startup and warns when the configuration may
//! still not fit ([`resources::open_files_warning`]).

use crate::config::Config;
use crate::resources;
use std::io;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; the limit now in force.
pub fn raise_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// Raise the limit, and the warning if `config` may not fit in it.
pub fn prepare(config: &Config) -> Option<String> {
    match raise_limit() {
        Ok(limit) => resources::open_files_warning(config, limit),
        Err(e) => Some(format!("cannot read or raise the open-file limit: {e}")),
    }
}
