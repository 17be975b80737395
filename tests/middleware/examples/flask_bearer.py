import os

from flask import Flask, request

from frontdesk import BearerAuth, FrontdeskWSGIMiddleware

app = Flask(__name__)


@app.get("/me")
def me() -> dict[str, str]:
    return {"user": request.environ["REMOTE_USER"], "sub": request.environ["frontdesk.claims"]["sub"]}


app.wsgi_app = FrontdeskWSGIMiddleware(app.wsgi_app, BearerAuth(jwks_url=os.environ["FRONTDESK_JWKS_URL"]))
