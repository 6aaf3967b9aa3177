"""``prcore-workbench serve``: one process serving the Panel app at ``/`` and the REST/SSE endpoints."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

from prcore_core import PrCore
from prcore_core.settings import Settings
from workbench import api

log = logging.getLogger(__name__)


#: Largest request body (event log upload) accepted over REST.
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024


class PortInUseError(RuntimeError):
    """The port is taken by another process."""


def check_port(host: str, port: int) -> None:
    """Refuse to start on a port another process listens on, with a message that says so."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(f"Port {port} on {host} is already in use; choose another with --port") from None
            raise


def serve(host: str = "127.0.0.1", port: int = 8000, data_dir=None, database_url=None, token=None,
          show: bool = False, core: PrCore | None = None) -> None:  # fmt: skip
    """Serve until SIGINT/SIGTERM; prints the URLs and the API token first."""
    import panel as pn

    from workbench.app import create_app

    check_port(host, port)
    if core is None:
        given = {"data_dir": data_dir, "database_url": database_url}
        core = PrCore(settings=Settings(**{k: v for k, v in given.items() if v is not None}))
    token = api.resolve_token(core.settings.data_dir, token)
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="prcore-api")
    server = pn.serve(
        {"/": lambda: create_app(core)},
        port=port,
        address=host,
        websocket_origin=[f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"],
        show=show,
        start=False,
        title="PrCore Workbench",
        extra_patterns=api.routes(core, token, pool),
        http_server_kwargs={"max_buffer_size": MAX_UPLOAD_BYTES, "max_body_size": MAX_UPLOAD_BYTES},
        verbose=False,
    )
    loop = server.io_loop

    def shutdown(*_):
        loop.add_callback_from_signal(_stop)

    def _stop():
        print("Shutting down ...", flush=True)
        server.stop()
        loop.stop()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    base = f"http://{host}:{port}"
    print(f"PrCore Workbench serving data directory {core.settings.data_dir}", flush=True)
    print(f"  dashboard:  {base}/", flush=True)
    print(f"  REST/SSE:   {base}/project/{{id}}, {base}/event/{{id}}, {base}/project/{{id}}/streaming/result",
          flush=True)  # fmt: skip
    print(f"  API token:  {token}   (send 'Authorization: Bearer <token>')", flush=True)
    server.start()
    try:
        loop.start()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        core.close()
        print("Stopped.", flush=True)
        sys.stdout.flush()
