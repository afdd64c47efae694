"""``create_app(settings)``: builds one Quart app, registers the blueprints, wires errors.

Each test builds its own app from its own ``Settings``; nothing here reads the
environment (that is ``settings.py``) or serves (that is ``__main__``).
"""

from __future__ import annotations

from quart import Quart

from .routes import health
from .settings import Settings
from .state import State

__all__ = ["create_app"]


def create_app(settings: Settings) -> Quart:
    app = Quart("dd_controlplane")
    app.extensions["dd"] = State(settings=settings)
    app.register_blueprint(health.blueprint)
    return app
