"""wsgi:app wrapped for benchmarks: each response carries ``Server-Timing: app;dur=<ms>``, the
time the bridge spent on the request (WSGI call to response headers), so client overhead is not
counted as the bridge's."""

import time

from wsgi import app as bridge


def app(environ, start_response):
    started = time.perf_counter()

    def timed_start_response(status, headers, exc_info=None):
        elapsed = (time.perf_counter() - started) * 1000
        headers.append(("Server-Timing", f"app;dur={elapsed:.3f}"))
        return start_response(status, headers, exc_info)

    return bridge(environ, timed_start_response)
