"""syft's Datasite with rds's deny-by-default dispatch (see ``allowlist``).

Every API call syft serves — over HTTP (``/api/v2/api_call``) or in-process (a Python
connection) — passes through ``handle_api_call_with_unsigned_result``. rds checks there,
before syft looks anything up or runs anything: the call must be signed, addressed to this
server (syft would otherwise forward it to a peer), blocking, on the caller's role's
allow-list, and, for the generic readers, about the kind of object rds reads.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from rds._syft import allowlist, rows, withdraw


@cache
def datasite_class() -> type:
    """The ``Datasite`` subclass rds builds (created on first use: syft imports slowly)."""
    from syft.client.api import SignedSyftAPICall
    from syft.server.datasite import Datasite
    from syft.service.response import SyftError, SyftSuccess

    rows.install_notification_lookup()

    class RDSDatasite(Datasite):
        """A syft Datasite that refuses every call rds does not make."""

        def handle_api_call_with_unsigned_result(
            self, api_call: Any, job_id: Any = None, check_call_location: bool = True
        ) -> Any:
            if not isinstance(api_call, SignedSyftAPICall) or not api_call.is_valid:
                allowlist.log.warning("refused an unsigned or badly signed syft call")
                return SyftError(message="rds domains accept signed calls only.")
            message = api_call.message
            caller = str(api_call.credentials)[:16]
            if message.server_uid != self.id:
                allowlist.log.warning("refused a call addressed to another server from %s", caller)
                return SyftError(message="rds domains do not forward calls to other servers.")
            role = self.get_role_for_credentials(credentials=api_call.credentials)
            why = allowlist.refusal(
                role, message.path, blocking=message.blocking, caller=caller
            ) or allowlist.argument_refusal(message.path, message.args, message.kwargs)
            if why is not None:
                return SyftError(message=why)
            if message.path == rows.ROWS:  # rds's own read (see rds._syft.rows)
                try:
                    wanted = rows.check_arguments(message.args, message.kwargs)
                except rows.BadArguments as exc:
                    return SyftError(message=str(exc))
                found = rows.request_rows(self, api_call.credentials, **wanted)
                # One string: syft's serde costs per nested value, JSON does not.
                return SyftSuccess(message="", value=json.dumps(found))
            if message.path == withdraw.PATH:  # a scientist takes back their own request
                try:
                    target = withdraw.check_arguments(message.args, message.kwargs)
                    done = withdraw.withdraw(self, api_call.credentials, target)
                except withdraw.Refused as exc:
                    return SyftError(message=str(exc))
                return SyftSuccess(message=done, value=done)
            if message.path in withdraw.GUARDED:  # owner writes never race a withdrawal
                outcome = withdraw.guarded(
                    self,
                    message.path,
                    message.args,
                    message.kwargs,
                    lambda: super(RDSDatasite, self).handle_api_call_with_unsigned_result(
                        api_call, job_id=job_id, check_call_location=check_call_location
                    ),
                )
                if isinstance(outcome, withdraw.Refused):
                    return SyftError(message=str(outcome))
                return outcome
            return super().handle_api_call_with_unsigned_result(
                api_call, job_id=job_id, check_call_location=check_call_location
            )

    return RDSDatasite
