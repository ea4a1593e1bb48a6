"""A seccomp-BPF filter for sandboxed programs, built with ctypes (no libseccomp dependency).

The namespaces in `isolation.py` decide what a program can see; this filter shrinks what it can
ask the kernel to do, so that an exploit of a rarely used kernel interface, or a program that
tries to rebuild its own namespaces, gets EPERM instead. Denied (x86_64; other architectures get
no filter and `isolation` reports it):
  - new namespaces, mounts and root changes: unshare, setns, mount and the new mount API,
    pivot_root, chroot, clone with any CLONE_NEW* flag (clone3 answers ENOSYS, so libc falls
    back to clone, whose flags a filter can read);
  - reading or writing other processes: ptrace, process_vm_readv/writev, pidfd_getfd;
  - sockets of every family but AF_UNIX (the network namespace has no interface anyway, and
    the jail holds no host socket file), io_uring (its operations bypass seccomp);
  - kernel keyrings, bpf, perf_event_open, userfaultfd, modules, kexec, reboot, swap, syslog,
    acct, quotactl, handle-based opens, clock setting, TIOCSTI (typing into a terminal).
Everything a Python math program does (files in its folder, fork, threads, mmap, pipes,
AF_UNIX socketpairs for multiprocessing) is allowed.
"""
import ctypes
import errno
import platform
import struct

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_W_ABS, _JEQ_K, _JSET_K, _JGE_K, _RET_K = 0x20, 0x15, 0x45, 0x35, 0x06
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low 32 bits of args)
_AF_UNIX = 1
_TIOCSTI = 0x5412
_CLONE_NEW_FLAGS = 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
_DENIED_X86_64 = {
    "ptrace": 101, "syslog": 103, "personality": 135, "uselib": 134, "pivot_root": 155, "_sysctl": 156,
    "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173, "create_module": 174,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "nfsservctl": 180,
    "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438,
    "mount_setattr": 442, "vhangup": 153}
_X86_64 = {"clone": 56, "clone3": 435, "socket": 41, "socketpair": 53, "ioctl": 16}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
  return struct.pack("<HBBI", code, jt, jf, k)


def _deny(err: int) -> bytes:
  return _insn(_RET_K, _RET_ERRNO | err)


def build_filter() -> bytes | None:
  """The BPF program (struct sock_filter array), or None when this architecture has no table."""
  if platform.machine() not in ("x86_64", "AMD64"):
    return None
  nr = _X86_64
  program = [_insn(_LD_W_ABS, _ARCH), _insn(_JEQ_K, _AUDIT_ARCH_X86_64, 1, 0), _deny(errno.EPERM),
             _insn(_LD_W_ABS, _NR), _insn(_JGE_K, _X32_SYSCALL_BIT, 0, 1), _deny(errno.EPERM)]
  for number in sorted(_DENIED_X86_64.values()):
    program += [_insn(_JEQ_K, number, 0, 1), _deny(errno.EPERM)]
  program += [_insn(_JEQ_K, nr["clone3"], 0, 1), _deny(errno.ENOSYS)]
  # Each argument check: if the syscall matches, load its argument, decide, else fall through.
  program += [_insn(_JEQ_K, nr["clone"], 0, 3), _insn(_LD_W_ABS, _ARG0),
              _insn(_JSET_K, _CLONE_NEW_FLAGS, 0, 1), _deny(errno.EPERM), _insn(_LD_W_ABS, _NR)]
  for name in ("socket", "socketpair"):
    program += [_insn(_JEQ_K, nr[name], 0, 3), _insn(_LD_W_ABS, _ARG0),
                _insn(_JEQ_K, _AF_UNIX, 1, 0), _deny(errno.EAFNOSUPPORT), _insn(_LD_W_ABS, _NR)]
  program += [_insn(_JEQ_K, nr["ioctl"], 0, 3), _insn(_LD_W_ABS, _ARG1),
              _insn(_JEQ_K, _TIOCSTI, 0, 1), _deny(errno.EPERM)]
  program += [_insn(_RET_K, _RET_ALLOW)]
  return b"".join(program)


class _SockFprog(ctypes.Structure):
  _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install(libc) -> bool:
  """Installs the filter on this thread (inherited by every child and exec); False when this
  architecture has none. Needs PR_SET_NO_NEW_PRIVS (or CAP_SYS_ADMIN) set before."""
  program = build_filter()
  if program is None:
    return False
  fprog = _SockFprog(len(program) // 8, program)
  if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
    err = ctypes.get_errno()
    raise OSError(err, f"seccomp filter: {errno.errorcode.get(err, err)}")
  return True
