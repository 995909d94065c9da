"""The pass signal of a sandboxed test run: a token that only the harness emits, once the program and every test
in it have run to the end.

A program's exit status cannot say that it passed: a generated program that calls ``os._exit(0)``,
``sys.exit(0)`` or ``raise SystemExit(0)`` before (or instead of) its tests exits 0 too, and a policy under RL
learns exactly that. So, as evalplus does, a pass is a positive signal from the harness:

1. The evaluator draws a fresh random secret for each run (:func:`new_secret`). It is never in the program's text,
   arguments, environment or sandbox files: it arrives on the wrapper's **stdin**, which this script (run in the
   sandbox as ``python -I -B harness.py TOKEN_FD PROGRAM``) reads to the end of the secret **before** any
   program code runs, then replaces with ``/dev/null``. The evaluator writes nothing else there, so a program
   that reads stdin, or execs a fresh copy of this harness, finds no secret.
2. The secret is read into a buffer that is zeroed once the token (:func:`token`, an HMAC-SHA256 of a fixed
   message under the secret) is derived; only the token is kept, in the closure of the function that emits it,
   with ``os.write`` bound before the program can patch ``os``.
3. The program runs as ``__main__`` in a fresh module (its own ``__file__`` and ``sys.argv``). If it returns,
   every statement ran, its tests included, and the harness writes the token to **TOKEN_FD**, a pipe the
   evaluator passed for this alone (not stdout or stderr, which the program writes to). An exit, an exception
   or a signal anywhere before that leaves the pipe without the token.
4. The evaluator counts a pass only if the exit status is 0 **and** the pipe carries the token
   (:func:`signal_found`).

Residual risk (the "in-process attack"). The program runs in the harness's own interpreter, so code that sets out
to cheat can still reach the token: by walking the interpreter's frames (``sys._getframe``, a traceback's
``tb_frame.f_back``) to the harness's locals, by ``gc.get_objects`` / ``gc.get_referrers`` to the emitting
function and its closure, or by reading the process's memory through ``/proc/self/mem``, and then write it and
exit. No channel within one interpreter can prevent that: whatever the harness uses to say "the tests are done"
(a token, a pipe to a separate notary process) is reachable by the code that shares it; such code could as well
subvert the tests themselves (an object whose ``__eq__`` is always true, a trace hook). Closing that needs the
tests out of the program's process (calls proxied to it, results compared in a trusted process), which the
HumanEval / MBPP test programs are not written for. What the token does close: every exit path (``os._exit``,
``sys.exit``, ``SystemExit`` at import time or in the function under test, a signal, ``exec`` of another
program) and every forgery from what the program can read (its source, ``sys.argv``, the environment, its
scratch directory, stdin, any file descriptor it writes to). The attack stays inside the sandbox
(:mod:`rmlab.policy_eval.sandbox.runner`: no network, no host filesystem, its own namespaces, limits on CPU, memory,
processes, output): its worst outcome is a false pass for that one program, never an escape; a run's ``stderr``
and completion are kept in ``scored.jsonl`` for anyone auditing a surprising pass.

This file is both a module (the evaluator's side: :func:`new_secret`, :func:`token`, :func:`signal_found`) and
the script copied into the sandbox, so it imports nothing outside the standard library.
"""

import builtins
import hmac
import os
import secrets
import signal
import sys
import types

SECRET_BYTES = 32
MESSAGE = b"rmlab harness: the program ran to its end, every test in it included"


def new_secret() -> bytes:
    """A fresh secret for one run, drawn by the evaluator."""
    return secrets.token_bytes(SECRET_BYTES)


def token(secret) -> bytes:
    """What the harness writes on the signal pipe after the program's last statement: HMAC-SHA256 of
    :data:`MESSAGE` under ``secret``, in hex."""
    return hmac.new(secret, MESSAGE, "sha256").hexdigest().encode()


def signal_found(channel: bytes, secret: bytes) -> bool:
    """Whether the signal pipe's content holds the token of ``secret`` on a line of its own."""
    expected = token(secret)
    return any(hmac.compare_digest(line, expected) for line in channel.splitlines())


# ---- inside the sandbox --------------------------------------------------------------------------------------------
def _read_secret(fd: int) -> bytearray:
    """Exactly :data:`SECRET_BYTES` from ``fd`` into a buffer that can be zeroed afterwards."""
    buf = bytearray(SECRET_BYTES)
    got = 0
    with memoryview(buf) as view:
        while got < SECRET_BYTES:
            n = os.readv(fd, [view[got:]])
            if n == 0:
                raise SystemExit("harness: no secret on stdin; this script is started by rmlab's sandbox only")
            got += n
    return buf


def _arm(token_fd: int):
    """Read the secret from stdin, derive the token, forget the secret, put ``/dev/null`` on stdin; return the
    function that emits the token."""
    key = _read_secret(0)
    signal = token(key) + b"\n"
    key[:] = bytes(SECRET_BYTES)
    del key
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    write, close = os.write, os.close  # bound now: a program that patches ``os`` does not see the token pass

    def emit() -> None:
        write(token_fd, signal)
        close(token_fd)

    return emit


def _run_program(path: str) -> None:
    """Run the program at ``path`` as ``__main__``, as ``python path`` would (its exceptions propagate)."""
    with open(path, "rb") as fh:
        code = compile(fh.read(), path, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv[:] = [path]
    exec(code, module.__dict__)  # noqa: S102  the sandbox is what contains it


def _report(err: BaseException) -> None:
    """Report an uncaught exception as ``python PROGRAM`` would, without the harness's own frames."""
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_globals is globals():
        tb = tb.tb_next
    sys.excepthook(type(err), err.with_traceback(tb), tb)


def main(argv: list[str]) -> None:
    """``harness.py TOKEN_FD PROGRAM [SECONDS]``: arm, run the program, then (only if it returned) emit the token.

    ``SECONDS``: the program's time limit as human-eval and open-instruct set it (``signal.setitimer`` of real
    time around the ``exec``, interpreter start-up excluded). When it runs out the process ends by SIGALRM (the
    default action: no exception a program could catch), which the evaluator reports as a timeout."""
    token_fd, path = int(argv[1]), argv[2]
    emit = _arm(token_fd)
    if len(argv) > 3:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, float(argv[3]))
    try:
        _run_program(path)
    except SystemExit:
        raise  # its exit status, and no token
    except BaseException as err:  # noqa: BLE001  an uncaught exception: exit status 1, as python would
        _report(err)
        raise SystemExit(1) from None
    signal.setitimer(signal.ITIMER_REAL, 0)
    emit()


if __name__ == "__main__":
    main(sys.argv)
