//! Thread priorities. The data plane's workers run at the normal priority,
//! the control plane (the admin API, config compiles, background tasks) at
//! a lower one: on a busy core the kernel then runs a worker as soon as it
//! has a request, and a 1 MB config apply does not hold up traffic.

/// Nice value of the control plane's threads.
const CONTROL_PLANE_NICE: i32 = 10;

/// Lowers the calling thread to the control plane's priority. Best effort:
/// where it cannot, the thread keeps its priority.
pub fn control_plane() {
    // SAFETY: setpriority takes plain values and touches no memory of this
    // process. On Linux the nice value is per thread, and `who` 0 names the
    // calling one.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, CONTROL_PLANE_NICE) };
    if result != 0 {
        tracing::debug!(
            "the control plane keeps its priority: {}",
            std::io::Error::last_os_error()
        );
    }
}
