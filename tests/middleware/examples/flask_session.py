import hmac
import os

from flask import Flask, request

from frontdesk import FrontdeskWSGIMiddleware, SessionAuth, User


async def check_password(username: str, password: str) -> User | None:
    ok = hmac.compare_digest(password.encode(), os.environ["DEMO_PASSWORD"].encode())  # your user lookup here
    return User(id=username, username=username) if ok else None


app = Flask(__name__)


@app.get("/me")
def me() -> dict[str, str]:
    return {"user": request.environ["frontdesk.user"].username}


auth = SessionAuth.from_secrets(
    access_secret=os.environ["FRONTDESK_ACCESS_SECRET"],
    refresh_secret=os.environ["FRONTDESK_REFRESH_SECRET"],
    authenticator=check_password,
    store="sqlite:///sessions.db",
)
app.wsgi_app = FrontdeskWSGIMiddleware(app.wsgi_app, auth)
