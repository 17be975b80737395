import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.urls import path

settings.configure(
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["localhost", "127.0.0.1"],
    INSTALLED_APPS=["rest_framework", "frontdesk.middleware.django_rest.FrontdeskConfig"],
    FRONTDESK={
        "JWKS_URL": os.environ["FRONTDESK_JWKS_URL"],  # or "ACCESS_SECRET": the gateway's shared secret
        "REVOCATIONS": os.environ.get("FRONTDESK_REVOCATIONS"),  # the gateway's store URL, to honour logouts
    },
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["frontdesk.middleware.django_rest.FrontdeskAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        "UNAUTHENTICATED_USER": None,  # no django.contrib.auth needed
    },
)

# DRF reads its settings as it is imported, so these come after settings.configure().
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from frontdesk.middleware.django_rest import HasScopes


class Me(APIView):
    def get(self, request: Request) -> Response:
        return Response({"user": request.user.username, "sub": request.auth["sub"]})


class Reports(APIView):
    permission_classes = (HasScopes,)
    required_scopes = ("reports",)

    def get(self, request: Request) -> Response:
        return Response({"reports": [], "for": request.user.id})


urlpatterns = [path("me", Me.as_view()), path("reports", Reports.as_view())]
app = get_wsgi_application()
