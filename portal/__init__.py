# `celery -A portal worker|beat` finds the app here.
from portal.celery_app import app

__all__ = ["app"]
