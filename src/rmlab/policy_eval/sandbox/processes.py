"""Process plumbing of the sandbox (:mod:`rmlab.policy_eval.sandbox.runner`): output pipes read under a budget, the CPU time
of a whole process tree, and ending a process group."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess


class Streams:
    """The sandbox's output pipes, read without blocking. Each group of pipes (stdout + stderr; the pass-signal
    pipe) has an output budget of its own: what is read beyond it is dropped, and :meth:`read` reports it."""

    def __init__(self, groups: list[list[int]], budget: int):
        self.budget, self.totals = budget, [0] * len(groups)
        self.group = {fd: i for i, fds in enumerate(groups) for fd in fds}
        self.chunks: dict[int, list[bytes]] = {fd: [] for fd in self.group}
        self.selector = selectors.DefaultSelector()
        for fd in self.group:
            self.selector.register(fd, selectors.EVENT_READ)
        self.open = len(self.group)

    def read(self, timeout: float) -> int:
        """Read what is ready within ``timeout`` seconds; return the most bytes any group has written so far."""
        for key, _ in self.selector.select(timeout=timeout):
            data = os.read(key.fd, 65536)
            if not data:
                self.selector.unregister(key.fd)
                self.open -= 1
                continue
            group = self.group[key.fd]
            self.chunks[key.fd].append(data[: max(0, self.budget - self.totals[group])])
            self.totals[group] += len(data)
        return max(self.totals)

    def text(self, fd: int) -> bytes:
        return b"".join(self.chunks[fd])

    def close(self) -> None:
        self.selector.close()


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used by ``root``, its descendants and its session, children they have reaped included (a
    sandbox's processes are all below ``root``: orphans go to the PID namespace's init, which is one of them)."""
    stats = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            fields = data[data.rindex(b")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...
            stats[int(d)] = (int(fields[1]), int(fields[3]), sum(int(f) for f in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    todo = [root] + [pid for pid, (_, sid, _) in stats.items() if sid == root]
    tree: set[int] = set()
    while todo:
        pid = todo.pop()
        if pid not in tree and pid in stats:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return sum(stats[pid][2] for pid in tree) / os.sysconf("SC_CLK_TCK")


def reap(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return proc.wait()


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def count_processes(uid: int) -> int:
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
