import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk import BearerAuth, FrontdeskMiddleware


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.identity, "claims": request.scope["frontdesk.claims"]})


auth = BearerAuth(jwks_url=os.environ["FRONTDESK_JWKS_URL"], public_paths=["/health"])
app = Starlette(routes=[Route("/me", me)], middleware=[Middleware(FrontdeskMiddleware, auth=auth)])
