"""The jupyter_server extension behind the Remote Data panel.

Enabled as ``rds`` by ``jupyter-config/server-config/rds.json`` (installed with the wheel;
``rds._jupyter_server_extension_points`` points here); its
routes live under ``<base_url>rds/`` (``rds.panel.handlers``) and call
``rds.panel.service``, which is plain Python over the same objects the kernel API uses.
"""

from __future__ import annotations

from typing import Any


def _load_jupyter_server_extension(server_app: Any) -> None:
    from rds.panel.handlers import setup_handlers
    from rds.panel.service import RemoteDataService

    service = RemoteDataService()
    setup_handlers(server_app.web_app, service)
    service.warm_up()
    server_app.log.info("rds: Remote Data routes registered under /rds/")
