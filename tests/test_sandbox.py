"""The code sandbox contains hostile programs: each one is recorded as a failed run, the evaluator goes on."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from rmlab.policy_eval.sandbox.runner import UNSAFE_MODE, Limits, Sandbox, SandboxUnavailable

LIMITS = Limits(cpu_seconds=2, wall_seconds=4.0, memory_bytes=1 << 30, processes=16, output_bytes=1 << 16)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox(LIMITS)
    sb.check()
    return sb


def test_ordinary_program_runs_with_stdlib_and_numpy(sandbox):
    res = sandbox.run_python("import numpy as np\nprint(int(np.arange(4).sum()))")
    assert res.status == "ok" and res.passed
    assert res.stdout.strip() == "6"


def test_failing_assertion_is_an_error_not_a_crash(sandbox):
    res = sandbox.run_python("assert 1 + 1 == 3")
    assert res.status == "error" and not res.passed
    assert "AssertionError" in res.stderr


def test_infinite_loop_is_stopped_by_the_cpu_limit(sandbox):
    res = sandbox.run_python("while True:\n    pass")
    assert res.status in ("killed", "timeout") and not res.passed
    assert res.wall_seconds < LIMITS.wall_seconds + 3


def test_sleeping_program_is_stopped_by_the_wall_clock(sandbox):
    res = sandbox.run_python("import time\ntime.sleep(60)")
    assert res.status == "timeout"
    assert LIMITS.wall_seconds <= res.wall_seconds < LIMITS.wall_seconds + 3


def _processes_named(comm: str) -> int:
    """Processes on this machine whose name (``/proc/PID/comm``) is ``comm``, whoever runs them."""
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                n += Path(f"/proc/{d}/comm").read_text().strip() == comm
            except OSError:
                pass
    return n


def test_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(sandbox):
    """Each child renames itself to a name unique to this run and sleeps; the test sees them from outside while
    the program runs (so the check can fail), and sees none once the run is over, whatever uid runs the tests."""
    name = "rmlab" + uuid.uuid4().hex[:10]
    src = (
        f"import os, time\nn = 0\nfor _ in range(10000):\n    try:\n        if os.fork() == 0:\n"
        f"            open('/proc/self/comm', 'w').write({name!r}); time.sleep(30); os._exit(0)\n"
        "        n += 1\n    except OSError:\n        break\nprint(n, flush=True)\ntime.sleep(1.5)\nos._exit(1)"
    )
    done: list = []
    thread = threading.Thread(target=lambda: done.append(sandbox.run_python(src)))
    thread.start()
    seen = 0
    while thread.is_alive():
        seen = max(seen, _processes_named(name))
        time.sleep(0.05)
    thread.join()
    res = done[0]
    assert not res.passed
    forked = int(res.stdout.split()[0])
    assert 0 < forked <= LIMITS.processes  # the limit held
    assert seen > 0  # the children were visible from here while the program ran ...
    time.sleep(0.2)
    assert _processes_named(name) == 0  # ... and every one went with the sandbox's PID namespace


def test_a_fork_bomb_that_keeps_retrying_is_ended_by_the_cpu_limit_of_the_whole_sandbox():
    """Every process retries ``fork()`` forever, catching the error at the process limit: each one spins, none
    reaches its own CPU limit soon; the CPU time of the whole sandbox ends it long before the wall-clock limit."""
    limits = Limits(cpu_seconds=60, wall_seconds=60.0, total_cpu_seconds=3, processes=8)
    src = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    res = Sandbox(limits).run_python(src)
    assert not res.passed
    assert res.wall_seconds < 20, res
    assert res.status == "cpu_limit" and "CPU limit" in res.reason


def test_memory_bomb_fails_inside_its_limit(sandbox):
    res = sandbox.run_python("blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))")
    assert not res.passed
    assert "MemoryError" in res.stderr or res.status == "killed"


def test_no_network_even_to_a_port_on_this_machine(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(6)
    port = server.getsockname()[1]
    accepted = []
    thread = threading.Thread(target=lambda: _accept(server, accepted))
    thread.start()
    res = sandbox.run_python(
        f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'leak')\nprint('connected')"
    )
    thread.join()
    server.close()
    assert not res.passed and "connected" not in res.stdout
    assert accepted == []


def _accept(server: socket.socket, accepted: list) -> None:
    try:
        conn, _ = server.accept()
        accepted.append(conn.recv(16))
        conn.close()
    except OSError:
        pass


def test_writes_outside_the_scratch_directory_fail(sandbox, tmp_path):
    target = tmp_path / "escaped.txt"
    os.chmod(tmp_path, 0o777)  # writable by anyone on the host: only the sandbox stands in the way
    res = sandbox.run_python(f"open({str(target)!r}, 'w').write('x')")
    assert not res.passed and not target.exists()
    home = Path.home() / ".rmlab-sandbox-escape"
    res = sandbox.run_python(f"open({str(home)!r}, 'w').write('x')")
    assert not res.passed and not home.exists()
    ok = sandbox.run_python("open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())")
    assert ok.passed and ok.stdout.strip() == "ok"


def test_environment_secret_of_the_parent_is_not_visible(sandbox, monkeypatch):
    monkeypatch.setenv("RMLAB_TEST_SECRET", "hunter2")
    res = sandbox.run_python(
        "import os\nprint(repr(os.environ.get('RMLAB_TEST_SECRET')))\nprint(open('/proc/1/environ', 'rb').read())"
    )
    assert "hunter2" not in res.stdout + res.stderr
    assert res.stdout.startswith("None")


def test_killing_the_parent_process_fails_and_the_evaluator_lives(sandbox):
    me = os.getpid()
    res = sandbox.run_python(f"import os, signal\nos.kill({me}, signal.SIGKILL)\nos.kill(os.getppid(), signal.SIGKILL)")
    assert not res.passed
    assert os.getpid() == me  # still here
    again = sandbox.run_python("print('still working')")
    assert again.passed


def test_100_megabytes_of_output_are_cut_off(sandbox):
    res = sandbox.run_python("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * (1 << 20))")
    assert res.status == "output_limit" and not res.passed
    assert len(res.stdout) <= LIMITS.output_bytes
    assert res.wall_seconds < LIMITS.wall_seconds


def test_a_sandbox_that_cannot_start_stops_with_a_clear_message(tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable, match="did not start.*No permissions"):
        Sandbox(LIMITS, bwrap=str(fake)).check()


def test_unsafe_mode_must_be_named_explicitly():
    with pytest.raises(ValueError, match=UNSAFE_MODE):
        Sandbox(LIMITS, mode="none")
