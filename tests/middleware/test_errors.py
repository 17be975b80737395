"""The error hierarchy's HTTP answers: each leaf's status and code are part of the JSON contract."""

from __future__ import annotations

from frontdesk import FrontdeskError
from frontdesk.gateway.proxy import errors as proxy_errors
from frontdesk.middleware import errors
from frontdesk.middleware.http import error_response

EXPECTED = {
    "FrontdeskError": (500, "internal_error"),
    "TokenError": (401, "invalid_token"),
    "InvalidToken": (401, "invalid_token"),
    "UnknownKey": (401, "invalid_token"),
    "InsufficientScope": (403, "insufficient_scope"),
    "ExpiredToken": (401, "token_expired"),
    "NotAuthenticated": (401, "not_authenticated"),
    "SessionRevoked": (401, "session_revoked"),
    "TokenReused": (401, "token_reused"),
    "BadCredentials": (401, "invalid_credentials"),
    "RateLimited": (429, "rate_limited"),
    "Overloaded": (503, "overloaded"),
    "CsrfRejected": (403, "csrf_rejected"),
    "WebSocketRefused": (403, "websocket_refused"),
    "BadRequest": (400, "bad_request"),
    "StoreError": (503, "store_unavailable"),
    "StoreNotReady": (503, "store_unavailable"),
    "BadPath": (400, "bad_path"),
    "BadFraming": (400, "bad_request"),
    "MethodNotAllowed": (405, "method_not_allowed"),
    "PayloadTooLarge": (413, "payload_too_large"),
    "HeadersTooLarge": (431, "headers_too_large"),
    "UpstreamError": (502, "bad_gateway"),
    "UpstreamUnavailable": (502, "upstream_unavailable"),
    "UpstreamTimeout": (504, "upstream_timeout"),
    "UpstreamConnectTimeout": (504, "upstream_timeout"),
    "UpstreamProtocolError": (502, "bad_gateway"),
    "UpstreamClosed": (502, "upstream_closed"),
    "ServerStopping": (503, "server_stopping"),
    "BrowserGone": (502, "client_closed"),
    "SessionEnded": (401, "session_ended"),
    "OidcLoginFailed": (400, "oidc_login_failed"),
    "InvalidLoginState": (400, "invalid_state"),
    "IdTokenRejected": (401, "invalid_id_token"),
    "LoginDenied": (403, "access_denied"),
    "ProviderRefused": (400, "provider_refused"),
    "ProviderUnavailable": (502, "provider_unavailable"),
    "BadLogoutToken": (400, "invalid_logout_token"),
}


def test_every_error_keeps_its_status_and_code() -> None:
    found = {
        name: (cls.status, cls.code)
        for module in (errors, proxy_errors)
        for name in module.__all__
        if isinstance(cls := getattr(module, name), type) and issubclass(cls, FrontdeskError)
    }
    assert found == EXPECTED


def test_an_app_declares_its_own_error_in_the_class_header() -> None:
    class Gone(FrontdeskError, status=410, code="gone"):
        """A resource that was here and is not."""

    class LongGone(Gone, code="long_gone"):
        pass

    assert (Gone.status, Gone.code, LongGone.status, LongGone.code) == (410, "gone", 410, "long_gone")
    response = error_response(LongGone("removed in 2019"))
    assert (response.status, response.body) == (410, b'{"error":"long_gone","detail":"removed in 2019"}')
    assert (FrontdeskError.status, FrontdeskError.code) == (500, "internal_error")  # the base is untouched
