import hmac
import os

from fastapi import FastAPI, Request

from frontdesk import FrontdeskMiddleware, SessionAuth, User


async def check_password(username: str, password: str) -> User | None:
    ok = hmac.compare_digest(password.encode(), os.environ["DEMO_PASSWORD"].encode())  # your user lookup here
    return User(id=username, username=username) if ok else None


app = FastAPI()
app.add_middleware(
    FrontdeskMiddleware,
    auth=SessionAuth.from_secrets(
        access_secret=os.environ["FRONTDESK_ACCESS_SECRET"],
        refresh_secret=os.environ["FRONTDESK_REFRESH_SECRET"],
        authenticator=check_password,
        store="sqlite:///sessions.db",
    ),
)


@app.get("/me")
async def me(request: Request) -> dict[str, str]:
    return {"user": request.user.display_name}
