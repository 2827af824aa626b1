"""gunicorn settings of the shipped unit (deploy/systemd/lms-zulip-bridge.service); the
command line there sets the bind address and the number of workers.

Metrics add up across workers: with ``PROMETHEUS_MULTIPROC_DIR`` set (the unit sets it), each
worker writes its counters to files in that directory and ``/metrics`` sums them
(prometheus_client's multiprocess mode). Files of processes that are gone are removed at start,
and a worker's live gauges when it exits.
"""

import os
import shutil
import tempfile

timeout = 30            # a request stuck longer than this is killed (nginx waits 35 s)
graceful_timeout = 30
keepalive = 5           # nginx keeps upstream connections open (keepalive 16)
max_requests = 10000    # recycle workers now and then
max_requests_jitter = 1000
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server):
    """Remove metric files of processes that no longer run (an earlier start, a crash).

    The workers share one LMS bulkhead (``LMS_BULKHEAD_DIR``, unless set a directory of this
    master's), and unless set ``LMS_MAX_CONCURRENT`` (LMS-bound requests in flight across all
    workers) is one less than the requests the workers can run at once, so a slow LMS never
    ties up every worker: a request that needs no LMS (/healthz, client credentials) always
    finds one.
    """
    slots = server.cfg.workers * max(1, server.cfg.threads)
    os.environ.setdefault("LMS_MAX_CONCURRENT", str(max(1, slots - 1)))
    os.environ.setdefault("LMS_BULKHEAD_DIR", os.path.join(
        tempfile.gettempdir(), f"lms-zulip-bridge-bulkhead-{os.getpid()}"))
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        stem = name.rsplit(".", 1)[0]
        pid = stem.rsplit("_", 1)[-1]
        if name.endswith(".db") and pid.isdigit() and not _pid_alive(int(pid)):
            os.remove(os.path.join(directory, name))


def on_exit(server):
    if os.environ.get("LMS_BULKHEAD_DIR", "").endswith(f"-bulkhead-{os.getpid()}"):
        shutil.rmtree(os.environ["LMS_BULKHEAD_DIR"], ignore_errors=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
