import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from frontdesk import BearerAuth, FrontdeskWSGIMiddleware

settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost", "127.0.0.1"])


def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.META["REMOTE_USER"], "sub": request.META["frontdesk.claims"]["sub"]})


urlpatterns = [path("me", me)]
app = FrontdeskWSGIMiddleware(get_wsgi_application(), BearerAuth(jwks_url=os.environ["FRONTDESK_JWKS_URL"]))
