"""The keys that seal the identity provider's tokens kept with each session (see middleware/idp_tokens.py).

``FRONTDESK_OIDC_TOKEN_KEY`` (the environment or a .env file; never the config file) seals; the comma-separated
``FRONTDESK_OIDC_TOKEN_KEY_PREVIOUS`` still open what older keys sealed, so a key is replaced without ending
sessions: move the old one to ``_PREVIOUS``, set a new one, and drop the old one after the longest session
(``max_session_age``). Each key is a random string of at least 32 bytes: ``frontdesk keygen --write .env``
adds one to an existing .env.
Required as soon as an ``[[oidc]]`` provider is configured: frontdesk refuses to start without it.
"""

from __future__ import annotations

from collections.abc import Mapping

from frontdesk.middleware.idp_tokens import MIN_KEY_BYTES

from .validators import Problems

__all__ = ["TOKEN_KEY_ENV", "TOKEN_KEY_PREVIOUS_ENV", "parse_token_keys"]

TOKEN_KEY_ENV = "FRONTDESK_OIDC_TOKEN_KEY"  # noqa: S105 (the variable's name, not a key)
TOKEN_KEY_PREVIOUS_ENV = "FRONTDESK_OIDC_TOKEN_KEY_PREVIOUS"  # noqa: S105 (a name)


def parse_token_keys(environ: Mapping[str, str], problems: Problems, *, needed: bool) -> tuple[str, ...]:
    """The token keys, oldest first and the sealing one last (itsdangerous's order); problems recorded."""
    current = environ.get(TOKEN_KEY_ENV, "").strip()
    previous = [v.strip() for v in environ.get(TOKEN_KEY_PREVIOUS_ENV, "").split(",") if v.strip()]
    if not current:
        if needed:
            problems.add(
                f"{TOKEN_KEY_ENV} is not set: [[oidc]] keeps each session's identity provider tokens encrypted"
                f" with it; run `frontdesk keygen --write .env` beside the config (it adds {TOKEN_KEY_ENV} to an"
                " existing .env, 0600, and changes nothing already there), or put a random string of at least"
                f" {MIN_KEY_BYTES} bytes in the environment"
            )
        return ()
    for name, value in [(TOKEN_KEY_ENV, current)] + [(TOKEN_KEY_PREVIOUS_ENV, v) for v in previous]:
        if len(value.encode()) < MIN_KEY_BYTES:
            problems.add(f"{name} holds a key shorter than {MIN_KEY_BYTES} bytes; use a random string of 48 or more")
    return (*previous, current)
