"""The project's settings with one more route, `/bench/ok`: the framework's ceiling for
the API section. Used only by the gunicorn that section starts; the product never
sees it."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_api"
# No Celery worker runs during the benchmark: the settlement nudge a transfer queues
# (at most one message a second per process, after its `cache.add` in Redis, which
# stays) goes to kombu's in-process memory transport rather than into the shared
# Redis broker, where it would wait for a worker that never comes.
CELERY_BROKER_URL = MEMORY_BROKER = "memory://localhost//"
