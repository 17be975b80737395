"""OpenID Connect Discovery: the provider's metadata document, fetched with httpx, checked, cached.

The ``issuer`` in the document must equal the configured one exactly (Discovery 1.0 section 4.3): a document
served for another issuer is refused, which is what stops a tampered or mis-routed document from pointing
the login at someone else's endpoints. With an https issuer every endpoint must be https too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..clock import Clock, system_clock
from ..errors import ProviderUnavailable

__all__ = ["Discovery", "ProviderMetadata"]

log = logging.getLogger("frontdesk.oidc")
MAX_DOCUMENT_BYTES = 256 * 1024
_REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
_OPTIONAL_URLS = ("end_session_endpoint", "revocation_endpoint", "userinfo_endpoint")


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document the relying party uses; ``document`` is all of it."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_signing_alg_values_supported: tuple[str, ...]
    end_session_endpoint: str | None = None
    revocation_endpoint: str | None = None
    authorization_response_iss_parameter_supported: bool = False
    document: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_document(cls, document: object, expected_issuer: str) -> ProviderMetadata:
        """Checked metadata; ``ValueError`` in plain words for anything the login cannot trust."""
        if not isinstance(document, Mapping):
            raise ValueError("the discovery document is not a JSON object")
        missing = [key for key in _REQUIRED if not isinstance(document.get(key), str) or not document[key]]
        if missing:
            raise ValueError(f"the discovery document lacks {', '.join(missing)}")
        if document["issuer"] != expected_issuer:
            raise ValueError(f"the discovery document names issuer {document['issuer']!r}, not {expected_issuer!r}")
        https = expected_issuer.startswith("https://")
        for key in _REQUIRED[1:] + _OPTIONAL_URLS:
            url = document.get(key)
            if url is None:
                continue
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError(f"the discovery document's {key} {url!r} is not a URL")
            if https and parts.scheme != "https":
                raise ValueError(f"the discovery document's {key} {url!r} is not https")
        algorithms = document.get("id_token_signing_alg_values_supported", ["RS256"])  # RS256: the spec's default
        if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
            raise ValueError("id_token_signing_alg_values_supported is not a list of names")
        return cls(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            id_token_signing_alg_values_supported=tuple(algorithms),
            end_session_endpoint=document.get("end_session_endpoint"),
            revocation_endpoint=document.get("revocation_endpoint"),
            authorization_response_iss_parameter_supported=document.get(
                "authorization_response_iss_parameter_supported"
            )
            is True,
            document=dict(document),
        )


class Discovery:
    """``{issuer}/.well-known/openid-configuration``, fetched on first use, kept for ``max_age``; a failed
    fetch is retried at most once per ``retry_interval`` (until then the caller gets 502 at once), and a
    stale document is kept if the refetch fails."""

    def __init__(
        self,
        issuer: str,
        *,
        http: httpx.AsyncClient,
        max_age: float = 3600.0,
        retry_interval: float = 5.0,
        clock: Clock = system_clock,
    ) -> None:
        self.issuer = issuer
        self.url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.http = http
        self.max_age = max_age
        self.retry_interval = retry_interval
        self.clock = clock
        self.fetches = 0
        self._metadata: ProviderMetadata | None = None
        self._loaded_at = float("-inf")
        self._failed_at = float("-inf")
        self._lock: asyncio.Lock | None = None

    async def metadata(self) -> ProviderMetadata:
        now = self.clock()
        current = self._metadata
        if current is not None and now - self._loaded_at < self.max_age:
            return current
        if self._lock is None:
            self._lock = asyncio.Lock()  # created lazily: it belongs to the loop that serves requests
        async with self._lock:  # single flight: one fetch however many logins start at once
            now = self.clock()
            if self._metadata is not None and now - self._loaded_at < self.max_age:
                return self._metadata
            if now - self._failed_at < self.retry_interval:
                if self._metadata is not None:
                    return self._metadata
                raise ProviderUnavailable("the OpenID Provider's discovery document could not be loaded")
            try:
                self._metadata = await self._fetch()
                self._loaded_at = now
            except (httpx.HTTPError, ValueError) as exc:
                self._failed_at = now
                log.warning("OpenID discovery at %s failed: %s", self.url, exc)
                if self._metadata is not None:
                    return self._metadata  # keep the stale document rather than stop every login
                raise ProviderUnavailable("the OpenID Provider's discovery document could not be loaded") from exc
            return self._metadata

    async def _fetch(self) -> ProviderMetadata:
        self.fetches += 1
        response = await self.http.get(self.url, headers={"accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise ValueError("the discovery document is too large")
        return ProviderMetadata.from_document(response.json(), self.issuer)
