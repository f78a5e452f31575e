"""The operator dashboard: server-rendered pages for the warehouse's people, all behind a sign-in."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)

from app.dashboard import auth, views  # noqa: E402, F401 - routes register themselves on `bp`
