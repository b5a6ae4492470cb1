"""The embedded broker's housekeeping: control messages nobody read are deleted, others kept."""

from __future__ import annotations

import os
import time

from config.broker import STALE_CONTROL_MESSAGE_SECONDS, embedded_folders
from config.tasks import embedded_broker_housekeeping


def test_housekeeping_deletes_only_stale_control_messages_of_the_embedded_broker(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.EMBEDDED_BROKER_DIR = tmp_path
    messages = embedded_folders(tmp_path)["messages"]
    messages.mkdir(parents=True)
    stale, fresh, work = (messages / name for name in ("1_a.x.pidbox.msg", "2_b.x.pidbox.msg", "3_c.default.msg"))
    for path in (stale, fresh, work):
        path.write_text("{}")
    long_ago = time.time() - STALE_CONTROL_MESSAGE_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))
    os.utime(work, (long_ago, long_ago))

    assert embedded_broker_housekeeping() == 1
    assert not stale.exists() and fresh.exists() and work.exists()

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    os.utime(fresh, (long_ago, long_ago))
    assert embedded_broker_housekeeping() == 0 and fresh.exists()
