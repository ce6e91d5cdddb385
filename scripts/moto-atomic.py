"""moto server with each request handled whole before the next one.

Real DynamoDB applies a conditional write atomically: of eight claims conditioned on the same
lease, exactly one succeeds. moto's server handles requests on threads and its DynamoDB backend
checks a condition and then writes without a lock, so two concurrent conditional writes can
both pass. The lease tests rely on that atomicity, so this launcher runs the unmodified moto
application behind one lock; connections stay concurrent (keep-alive, threads), requests are
served one at a time, which moto handles in well under a millisecond each.

Usage: python moto-atomic.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # The response is produced whole inside the lock: a lazily produced body would
            # otherwise run the backend after the lock is released.
            return list(app(environ, start_response))

    run_simple(
        host,
        port,
        one_at_a_time,
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
