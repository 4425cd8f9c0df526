//! `deny_io_uring <program> [args...]`: runs a program with io_uring refused, the way a
//! container's seccomp profile refuses it. Test-only helper for `tests/fallback.rs`.
//!
//! Installs a classic-BPF seccomp filter (after `PR_SET_NO_NEW_PRIVS`, so no privilege is
//! needed) that makes `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail with
//! `EPERM` and allows every other syscall, then `execvp`s the program (the filter is inherited
//! across exec). The filter first checks the architecture and allows everything on an
//! architecture it was not built for, since syscall numbers differ between them.

#[cfg(target_os = "linux")]
fn main() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .map(|a| CString::new(a.as_bytes()).expect("argument contains a NUL byte"))
        .collect();
    if args.is_empty() {
        eprintln!("usage: deny_io_uring <program> [args...]");
        std::process::exit(2);
    }
    if let Err(e) = seccomp::deny_io_uring() {
        eprintln!("deny_io_uring: installing the seccomp filter failed: {e}");
        std::process::exit(1);
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: `argv` is a NULL-terminated array of pointers to NUL-terminated strings owned by
    // `args`, which outlives the call; execvp only returns on failure.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    eprintln!(
        "deny_io_uring: execvp {:?} failed: {}",
        args[0],
        std::io::Error::last_os_error()
    );
    std::process::exit(127);
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("deny_io_uring: seccomp is Linux-only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod seccomp {
    use std::io;

    /// `AUDIT_ARCH_*` of the architecture this was compiled for (`EM_*` | 64-bit | little
    /// endian), or `None` where we do not know the io_uring syscall numbers.
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: Option<u32> = Some(0xC000_003E); // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: Option<u32> = Some(0xC000_00B7); // AUDIT_ARCH_AARCH64
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const AUDIT_ARCH: Option<u32> = None;

    /// io_uring_setup, io_uring_enter, io_uring_register: the same numbers on x86_64 and
    /// aarch64 (the unified syscall table).
    const IO_URING_SYSCALLS: [u32; 3] = [425, 426, 427];

    /// `offsetof(struct seccomp_data, nr)` and `offsetof(struct seccomp_data, arch)`.
    const NR_OFFSET: u32 = 0;
    const ARCH_OFFSET: u32 = 4;

    fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        }
    }

    /// The filter program:
    ///
    /// ```text
    /// 0: ld  [arch]
    /// 1: jeq AUDIT_ARCH ? 2 : allow
    /// 2: ld  [nr]
    /// 3: jeq 425 ? deny : 4
    /// 4: jeq 426 ? deny : 5
    /// 5: jeq 427 ? deny : allow
    /// 6: allow: ret ALLOW
    /// 7: deny:  ret ERRNO(EPERM)
    /// ```
    fn program(arch: u32) -> Vec<libc::sock_filter> {
        let ld_w_abs = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
        let jeq_k = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
        let ret_k = libc::BPF_RET | libc::BPF_K;
        let [setup, enter, register] = IO_URING_SYSCALLS;
        vec![
            stmt(ld_w_abs, ARCH_OFFSET),
            jump(jeq_k, arch, 0, 4), // not our arch: skip to allow (1 + 1 + 4 = 6)
            stmt(ld_w_abs, NR_OFFSET),
            jump(jeq_k, setup, 3, 0), // 3 + 1 + 3 = 7: deny
            jump(jeq_k, enter, 2, 0),
            jump(jeq_k, register, 1, 0),
            stmt(ret_k, libc::SECCOMP_RET_ALLOW),
            stmt(
                ret_k,
                libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA),
            ),
        ]
    }

    pub fn deny_io_uring() -> io::Result<()> {
        let Some(arch) = AUDIT_ARCH else {
            eprintln!("deny_io_uring: unknown architecture, io_uring left allowed");
            return Ok(());
        };
        let mut filter = program(arch);
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: prctl with integer arguments only; sets a flag on this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `prog` points to `filter`, a valid array of `prog.len` instructions that
        // lives across the call; the kernel copies the program before returning.
        let res = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if res != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
