import hmac
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from frontdesk import FrontdeskWSGIMiddleware, SessionAuth, User

settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost", "127.0.0.1"])


async def check_password(username: str, password: str) -> User | None:
    ok = hmac.compare_digest(password.encode(), os.environ["DEMO_PASSWORD"].encode())  # your user lookup here
    return User(id=username, username=username) if ok else None


def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.META["frontdesk.user"].username})


urlpatterns = [path("me", me)]
auth = SessionAuth.from_secrets(
    access_secret=os.environ["FRONTDESK_ACCESS_SECRET"],
    refresh_secret=os.environ["FRONTDESK_REFRESH_SECRET"],
    authenticator=check_password,
    store="sqlite:///sessions.db",
)
app = FrontdeskWSGIMiddleware(get_wsgi_application(), auth)
