"""The Celery app (`celery -A portal worker|beat`), configured from Django's CELERY_* settings.

Queues and routes live in settings.base. Every worker writes a heartbeat to the shared cache
when it starts and then every HEARTBEAT_INTERVAL_SECONDS; /healthz reads it.
"""

import logging
import os

from celery import Celery, bootsteps, signals

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


@signals.worker_init.connect
def reuse_smtp_connections(**kwargs):
    """Workers keep one SMTP connection per process open between emails (recovery.mailer).

    worker_init runs in the main process before the pool forks, so every child inherits it.
    """
    from recovery.mailer import enable_connection_reuse

    enable_connection_reuse()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(**kwargs):
    """Treat each task like a web request: keep the connection for CONN_MAX_AGE, drop it when
    it is broken or obsolete (settings.CELERY_DB_REUSE_MAX turns Celery's close-always off)."""
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def close_smtp_connection(**kwargs):
    from recovery.mailer import close_connection

    close_connection()
