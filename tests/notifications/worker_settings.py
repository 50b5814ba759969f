"""Settings for worker processes a test starts and kills itself: redelivery within seconds, not an hour."""
import os

from tests.settings import *  # noqa: F401,F403

CELERY_BROKER_TRANSPORT_OPTIONS = {  # noqa: F405
    **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
    "visibility_timeout": int(os.environ.get("TEST_VISIBILITY_TIMEOUT_S", "4")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
