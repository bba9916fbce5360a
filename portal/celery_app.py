"""The Celery app (`celery -A portal worker|beat`), configured from Django's CELERY_* settings.

Queues and routes live in settings.base. Every worker writes a heartbeat to the shared cache
when it starts and then every HEARTBEAT_INTERVAL_SECONDS; /healthz reads it.
"""

import logging
import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

logger = logging.getLogger(__name__)

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Write the worker heartbeat from the worker's own timer (in its main process).

    The timer runs in the worker's event loop, so the heartbeat stops when the worker stops
    consuming, which is what /healthz wants to know.
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker):
        from recovery.heartbeat import HEARTBEAT_INTERVAL_SECONDS

        record_worker_heartbeat()
        self.tref = worker.timer.call_repeatedly(
            HEARTBEAT_INTERVAL_SECONDS, record_worker_heartbeat
        )

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


def record_worker_heartbeat():
    from recovery.heartbeat import record_heartbeat

    try:
        record_heartbeat()
    except Exception as error:
        # The cache (Redis) is down: /healthz will say so; the worker keeps working.
        logger.warning("Could not record the worker heartbeat (%s)", type(error).__name__)


app.steps["worker"].add(HeartbeatStep)
