"""The jail of :mod:`read_distill.graders.sandbox`, run as a script once per snippet.

``python -I -S jail.py MODE CPU_S MEM_BYTES PARENT_PID WORKDIR`` reads a Python snippet
from stdin, sets up the sandbox and runs the snippet in it with ``python -I -S``; its
exit status is the snippet's. MODE ``isolated`` makes new namespaces and exits with
:data:`NO_ISOLATION` (the reason on stderr) where it cannot; MODE ``fallback`` applies
the limits but the process limit, as the caller's user, in WORKDIR (RLIMIT_NPROC counts
all of a user's processes, and does not bind root). It imports only the few standard
modules it needs: every import is paid once per snippet.

Process tree in isolated mode::

    jail (caller's namespaces; SIGTERM: kill the init, wait for it, exit)
      init (PID 1 of the new namespaces, root in them: builds the view, reaps)
        snippet (own uid, limits, python -I -S main.py) and whatever it starts

When the init exits, the kernel kills every process left in its PID namespace and the
init's exit completes only after they are gone, so once the jail has reaped the init,
nothing the snippet started is alive.
"""

import ctypes
import os
import resource
import signal
import sys

#: Processes (and threads) the snippet may have at once.
MAX_PROCS = 16
#: The snippet's uid is this plus the jail's pid: unique among running jails, so each
#: sandbox has a process count of its own (RLIMIT_NPROC is counted per uid).
UID_BASE = 1 << 20
#: The jail's exit status when it cannot isolate.
NO_ISOLATION = 125

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWPID, _CLONE_NEWNET = 0x20000, 0x8000000, 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT, _MS_BIND, _MS_REC = 0x1, 0x2, 0x4, 0x8, 0x20, 0x1000, 0x4000
_MS_PRIVATE = 1 << 18
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID = 0x1, 0x2
_SYS_MOUNT_SETATTR, _AT_FDCWD, _AT_RECURSIVE = 442, -100, 0x8000  # 442 on every architecture
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)
#: The interpreter itself, not a virtual environment's link to it: the snippet needs no
#: site-packages, and the link may lie where the snippet's uid cannot look.
_INTERPRETER = os.path.realpath(sys.executable)


class JailError(Exception):
    """The sandbox could not be set up."""


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        raise JailError(f"{what}: {os.strerror(ctypes.get_errno())}")


def _mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags), data.encode()), f"mount {fstype or source} on {target}")


def make_view(uid: int) -> None:
    """This mount namespace's view: every mount read-only, nosuid and private; a fresh
    tmpfs at /tmp owned by ``uid``; the PID namespace's own /proc; /run and /dev/shm empty."""
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID, 0, _MS_PRIVATE, 0)
    ret = _libc.syscall(
        ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(_AT_FDCWD), b"/", ctypes.c_uint(_AT_RECURSIVE), ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))
    )
    _check(ret, "mount_setattr of / (needs Linux >= 5.12)")
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size=16m,mode=0700,uid={uid},gid={uid}")
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    expose(os.path.realpath(sys.base_prefix))
    for hidden in ("/run", "/dev/shm"):
        if os.path.isdir(hidden) and not os.path.islink(hidden):
            _mount("tmpfs", hidden, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=4k")


def expose(path: str) -> None:
    """Make ``path`` reachable by any uid (pyenv keeps Python in root's 0700 home): hide its
    first closed ancestor under an empty read-only tmpfs that holds only ``path``."""
    parts = path.strip("/").split("/")
    closed = next((i for i in range(1, len(parts)) if not os.stat("/" + "/".join(parts[:i])).st_mode & 0o001), None)
    if closed is None:
        return
    ancestor = "/" + "/".join(parts[:closed])
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
    _mount("tmpfs", ancestor, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4k,mode=0755")
    os.makedirs(path, mode=0o755)
    _mount(f"/proc/self/fd/{fd}", path, "", _MS_BIND | _MS_REC)
    _mount("", ancestor, "", _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    os.close(fd)


def exec_snippet(src: bytes, workdir: str, uid: int | None, cpu_s: int, mem_bytes: int) -> None:
    """Become the snippet: limits, ``uid`` and a process limit (isolated mode), no new
    privileges, stdin and stderr on /dev/null, then ``python -I -S``. Never returns."""
    try:
        for limit, value in (
            (resource.RLIMIT_CPU, cpu_s),
            (resource.RLIMIT_AS, mem_bytes),
            (resource.RLIMIT_FSIZE, 1 << 20),
            (resource.RLIMIT_NOFILE, 256),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(limit, (value, value))
        if uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCS, MAX_PROCS))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)  # from root to another uid: every capability is dropped too
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
        os.chdir(workdir)
        with open("main.py", "wb") as f:
            f.write(src)
        devnull = os.open("/dev/null", os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 2)
        os.execve(_INTERPRETER, [_INTERPRETER, "-I", "-S", "main.py"], {})
    except BaseException as e:  # noqa: BLE001 - whatever it is, the snippet must not run
        os.write(2, f"sandbox: cannot start the snippet: {e}\n".encode())
        os._exit(1)


def wait_for(pid: int) -> int:
    """Reap children until ``pid`` ends (an init must reap orphans too); its exit status, 0..255."""
    while True:
        got, status = os.waitpid(-1, 0)
        if got == pid:
            return os.waitstatus_to_exitcode(status) & 0xFF


def die_with_parent(parent: int) -> None:
    """Be killed when the parent dies (``parent``: its pid, checked after the fact; 0: unknown)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent and os.getppid() != parent:
        os._exit(1)


def kill_on_term(pid: int) -> None:
    """On SIGTERM (the caller's timeout or output cap), SIGKILL ``pid``; wait_for then returns."""
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))


def jail(mode: str, cpu_s: int, mem_bytes: int, parent: int, workdir: str) -> int:
    """Set up the sandbox and run the snippet read from stdin in it; the snippet's exit status."""
    die_with_parent(parent)
    src = sys.stdin.buffer.read()
    uid = None
    if mode == "isolated":
        if os.geteuid() != 0:
            raise JailError("namespaces need root (euid 0 with CAP_SYS_ADMIN)")
        uid = UID_BASE + os.getpid()
        _check(_libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC), "unshare")
        init = os.fork()
        if init:
            kill_on_term(init)
            return wait_for(init)
        die_with_parent(0)
        try:
            make_view(uid)
        except (JailError, OSError) as e:
            os.write(2, f"sandbox: {e}\n".encode())
            os._exit(NO_ISOLATION)
        workdir = "/tmp"
    snippet = os.fork()
    if snippet == 0:
        exec_snippet(src, workdir, uid, cpu_s, mem_bytes)
    kill_on_term(snippet)
    return wait_for(snippet)


def main(argv: list[str]) -> None:
    """The script: the jail's exit status is the snippet's (NO_ISOLATION if it cannot isolate)."""
    try:
        code = jail(argv[0], int(argv[1]), int(argv[2]), int(argv[3]), argv[4])
    except (JailError, OSError) as e:
        os.write(2, f"sandbox: {e}\n".encode())
        code = NO_ISOLATION
    os._exit(code)  # skips the interpreter's teardown, which is a sizeable share of a run


if __name__ == "__main__":
    main(sys.argv[1:])
