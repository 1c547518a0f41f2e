"""The Remote Data panel's HTTP routes: parse, call one service method off the loop, reply JSON.

Every verb is ``@tornado.web.authenticated`` (Jupyter's token or cookie), and the
service's blocking calls run in a thread pool with a time limit, so a domain that is slow
or down never stalls the Jupyter server's event loop. Errors map to HTTP statuses here
and only here (``STATUS``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from rds.errors import (
    AuthenticationFailed,
    DatasetNotFound,
    DomainError,
    DomainUnreachable,
    InvalidInput,
    ProfileNotFound,
    RDSError,
)
from rds.panel.service import RemoteDataService

#: The first matching class decides the status (subclasses before their parents).
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (ProfileNotFound, 404),
    (DatasetNotFound, 404),
    (AuthenticationFailed, 400),  # the domain's password, not Jupyter's: not a 401
    (InvalidInput, 400),
    (DomainUnreachable, 502),
    (DomainError, 502),
    (RDSError, 500),
)
#: How long one call to a domain may take before the panel is told it is down.
CALL_TIMEOUT = 30.0
_NAME = r"[^/]+"


class _Handler(APIHandler):
    @property
    def service(self) -> RemoteDataService:
        service: RemoteDataService = self.settings["rds_service"]
        return service

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` off the event loop; map rds errors to a JSON error reply."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), CALL_TIMEOUT)
        except TimeoutError:
            self.fail(504, f"The domain did not answer within {CALL_TIMEOUT:.0f} s.")
        except RDSError as exc:
            status = next(code for cls, code in STATUS if isinstance(exc, cls))
            self.fail(status, str(exc))
        except Exception as exc:  # syft's and the network's failures are rds errors by now
            self.log.error("rds: a Remote Data call failed", exc_info=True)
            self.fail(500, f"Remote Data failed ({type(exc).__name__}); see Jupyter's log.")
        return None

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message}))
        raise tornado.web.Finish

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            self.fail(400, "The request body is not JSON.")
        if not isinstance(data, dict):
            self.fail(400, "The request body is a JSON object.")
        return data


class ProfilesHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.finish({"profiles": await self.call(self.service.profiles)})

    @tornado.web.authenticated
    async def post(self) -> None:
        data = self.body()
        fields = [data.get(k) for k in ("name", "url", "email", "password")]
        profile = await self.call(self.service.add_profile, *fields)
        self.set_status(201)
        self.finish({"profile": profile})


class ProfileHandler(_Handler):
    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        await self.call(self.service.remove_profile, name)
        self.set_status(204)
        self.finish()


class DatasetsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.finish({"datasets": await self.call(self.service.datasets, name)})


class MockHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, name: str, dataset: str) -> None:
        try:
            rows = int(self.get_query_argument("rows", "20"))
        except ValueError:
            self.fail(400, "rows is a whole number.")
        self.finish(await self.call(self.service.mock, name, dataset, rows))


class RequestsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.finish({"requests": await self.call(self.service.requests, name)})


class PendingHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.finish({"pending": await self.call(self.service.pending, name)})


ROUTES: tuple[tuple[str, type[_Handler]], ...] = (
    ("profiles", ProfilesHandler),
    (f"profiles/({_NAME})", ProfileHandler),
    (f"profiles/({_NAME})/datasets", DatasetsHandler),
    (f"profiles/({_NAME})/datasets/({_NAME})/mock", MockHandler),
    (f"profiles/({_NAME})/requests", RequestsHandler),
    (f"profiles/({_NAME})/pending", PendingHandler),
)


def setup_handlers(web_app: Any, service: RemoteDataService) -> None:
    """Register the routes under ``<base_url>rds/`` with ``service`` behind them."""
    web_app.settings["rds_service"] = service
    base = url_path_join(web_app.settings["base_url"], "rds")
    web_app.add_handlers(
        ".*$", [(url_path_join(base, pattern) + "/?$", handler) for pattern, handler in ROUTES]
    )
