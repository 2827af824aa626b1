"""The app for bench/soak.py (``deploy/serve.py --app soak_app:app``): the first worker to
import it traces its Python allocations (tracemalloc) and writes, every
``SOAK_SNAPSHOT_SECONDS``, the allocation sites that grew most since its first snapshot to
``SOAK_TRACE_FILE``."""

import os
import threading
import time


def trace_first_worker() -> None:
    path = os.environ.get("SOAK_TRACE_FILE")
    if not path or os.path.exists(path + ".claimed"):
        return
    open(path + ".claimed", "w").close()
    import tracemalloc

    tracemalloc.start(5)
    every = float(os.environ.get("SOAK_SNAPSHOT_SECONDS", "60"))

    def watch():
        time.sleep(every)
        first = tracemalloc.take_snapshot()
        minute = 1
        while True:
            time.sleep(every)
            minute += 1
            now = tracemalloc.take_snapshot()
            top = now.compare_to(first, "lineno")[:8]
            traced, _peak = tracemalloc.get_traced_memory()
            with open(path, "a") as fh:
                fh.write(f"minute {minute} (pid {os.getpid()}): traced {traced / 1e6:.1f} MB; "
                         f"growth since minute 1 by site:\n")
                for stat in top:
                    fh.write(f"  {stat}\n")

    threading.Thread(target=watch, daemon=True).start()


trace_first_worker()


from wsgi import app  # noqa: E402,F401  (the bridge itself, loaded after tracing has started)
