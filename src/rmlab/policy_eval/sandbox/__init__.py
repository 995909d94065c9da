"""Running generated code safely: the bubblewrap sandbox (``runner``: one process per program, no network, a
read-only view of the interpreter, time, output and CPU limits), the test harness that signals a pass only after a
program's last statement (``harness``), and the process tools both use (``processes``)."""
