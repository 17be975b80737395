"""The gateway's own errors: what the library raises is in :mod:`frontdesk.middleware.errors`."""

from __future__ import annotations

from frontdesk.middleware.errors import FrontdeskError

__all__ = ["ConfigError"]


class ConfigError(FrontdeskError):
    """The configuration cannot be used; ``problems`` lists every reason, in plain words."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"frontdesk cannot start; fix these configuration problems:\n{lines}")
