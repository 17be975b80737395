import os
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from frontdesk import BearerAuth, FrontdeskMiddleware, FrontdeskUser


def current_user(request: Request) -> FrontdeskUser:
    return request.user  # set by the middleware; requests without a valid token never get here


app = FastAPI()
app.add_middleware(
    FrontdeskMiddleware,
    auth=BearerAuth(jwks_url=os.environ["FRONTDESK_JWKS_URL"], scopes={"/admin/": "admin"}),
)


@app.get("/me")
async def me(user: Annotated[FrontdeskUser, Depends(current_user)]) -> dict[str, str]:
    return {"user": user.id, "username": user.username}
