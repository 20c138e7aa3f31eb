"""The viewer under uvicorn on a loopback port, for its tests over real sockets."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from btic.config import load_config
from btic.plugins import PluginManager
from btic.testing.servers import free_port


@contextlib.contextmanager
def serving(config_path: Path, *, https: bool = False) -> Iterator[str]:
    """``btic serve``'s application for ``config_path`` on a loopback port; its URL."""
    import uvicorn

    from btic.serve.app import make_app

    plugins = PluginManager().discover()
    app = make_app(load_config(config_path, plugins), plugins, https=https)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the viewer did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def logged_in(
    url: str, name: str = "auditor", password: str = "right horse"
) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as client:
        done = client.post("/login", data={"name": name, "password": password})
        assert done.status_code == 200 and "Log out" in done.text, done.text
        yield client


@contextlib.contextmanager
def audit_events() -> Iterator[list[dict[str, object]]]:
    """The log events the viewer writes meanwhile, at every level: whatever an
    earlier test configured (a level that drops ``info``) is put back after."""
    import logging

    import structlog
    from structlog.testing import capture_logs

    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as events:
            yield events
    finally:
        structlog.configure(**before)
