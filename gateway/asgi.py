"""The import target uvicorn uses when ``frontdesk serve`` runs several workers."""

from __future__ import annotations

import os

from .app import Gateway, create_app
from .config import config_path, load_config

__all__ = ["app_factory"]


def app_factory() -> Gateway:
    return create_app(load_config(config_path(None, os.environ)))
