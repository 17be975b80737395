import hmac
import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontdesk import FrontdeskMiddleware, SessionAuth, User


async def check_password(username: str, password: str) -> User | None:
    ok = hmac.compare_digest(password.encode(), os.environ["DEMO_PASSWORD"].encode())  # your user lookup here
    return User(id=username, username=username) if ok else None


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.display_name})


auth = SessionAuth.from_secrets(
    access_secret=os.environ["FRONTDESK_ACCESS_SECRET"],
    refresh_secret=os.environ["FRONTDESK_REFRESH_SECRET"],
    authenticator=check_password,
    store="sqlite:///sessions.db",
    public_paths=["/", "/assets/"],
)
app = Starlette(routes=[Route("/me", me)], middleware=[Middleware(FrontdeskMiddleware, auth=auth)])
