"""Close syft's in-server execution paths (DESIGN.md invariant 1).

Once a syft request is approved — which ``Request.deposit_result`` does — a plain syft
client calling the approved function makes the server ``exec`` the scientist's code. rds
never wants that: every private run happens in ``rds.sandbox``. The guard replaces the two
places syft 0.9.5 executes submitted code (user functions and user-submitted policy
classes) with a refusal. It is installed in every process that hosts an rds domain server,
before the server is built.
"""

from __future__ import annotations

from typing import Any, NoReturn

REFUSAL = (
    "rds domains never execute submitted code inside the syft server. "
    "Results are released by the data owner after a sandboxed run; "
    "use rds's Request.result() to fetch them."
)

_installed = False


def install() -> None:
    """Patch syft so that no submitted code can run in this process's servers."""
    global _installed
    if _installed:
        return
    from rds._syft import preload

    preload()  # with IPython hidden from syft's import (see there)
    from syft.service.action import action_service
    from syft.service.code import user_code
    from syft.service.policy import policy
    from syft.types.errors import SyftException

    def refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise SyftException(public_message=REFUSAL)

    action_service.ActionService._user_code_execute = refuse
    action_service.execute_byte_code = refuse
    user_code.execute_byte_code = refuse
    # Custom input/output policies are classes the scientist writes; syft execs them.
    policy.execute_policy_code = refuse
    policy.load_policy_code = refuse
    user_code.load_policy_code = refuse
    _installed = True


def is_installed() -> bool:
    """Whether the guard is active in this process."""
    return _installed
