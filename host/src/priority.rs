//! Thread priorities. The data plane's workers run at the priority the
//! host was started with, the control plane (the admin API, config
//! compiles, background tasks) at a lower one: on a busy core the kernel
//! then runs a worker as soon as it has a request, and a 1 MB config apply
//! does not hold up traffic.

/// Nice value of the control plane's threads, unless they started lower.
const CONTROL_PLANE_NICE: i32 = 10;

/// Lowers the calling thread to the control plane's priority; a thread
/// that already runs at that priority or below keeps its own. Best effort:
/// where it cannot, the thread keeps its priority.
pub fn control_plane() {
    // SAFETY: getpriority and setpriority take plain values and touch no
    // memory of this process; errno is this thread's own. On Linux the nice
    // value is per thread, and `who` 0 names the calling one.
    let lowered = unsafe {
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        if current == -1 && *libc::__errno_location() != 0 {
            -1
        } else if current >= CONTROL_PLANE_NICE {
            0
        } else {
            libc::setpriority(libc::PRIO_PROCESS, 0, CONTROL_PLANE_NICE)
        }
    };
    if lowered != 0 {
        tracing::debug!(
            "the control plane keeps its priority: {}",
            std::io::Error::last_os_error()
        );
    }
}
