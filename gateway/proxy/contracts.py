"""What the proxy needs from the session engine and the trusted-proxy list, as small Protocols.

They are the admission pipeline's own (``middleware.admission``, ``middleware.forwarded``): the proxy admits
requests by the same rules as session mode. Writing against these (rather than the concrete classes) keeps
the proxy testable with fakes and keeps the dependency one-way: the engine never learns that a proxy exists.
"""

from __future__ import annotations

from frontdesk.middleware.admission import GrantLike, TokenSource
from frontdesk.middleware.forwarded import TrustPolicy

__all__ = ["GrantLike", "TokenSource", "TrustPolicy"]
