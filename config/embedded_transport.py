"""kombu's ``filesystem://`` transport, made safe for several processes sharing one folder.

The stock transport has three races, each seen here with a web server, workers and beat on one folder:

- ``_put`` creates the message file empty and then writes it, so a consumer listing the folder in
  between takes an empty file, fails to decode it and the worker stops with an unrecoverable error;
- ``_get`` claims a message by moving it to the system's temporary folder: when that folder is on
  another file system the move is a copy followed by a delete, and two consumers can both copy it;
- an exchange table is created with ``open("wb")`` after an ``exists()`` check, so a reader can find it
  empty and two workers binding at once can lose one of their bindings.

Here every file appears complete or not at all (written aside, then ``os.replace``), a message is claimed
by an atomic rename inside the same folder (one consumer wins, the others find it gone), and exchange
tables are changed under a lock file of their own.

It is also quicker than the stock transport. kombu's virtual transport sleeps ``polling_interval`` (one
second by default) whenever a poll finds nothing, and a poll finds nothing as soon as the worker's prefetch
window is full: with a window of one message per process, a worker ran about two tasks a second whatever
their length. Here the wait ends as soon as a message of this connection is acknowledged or rejected (the
window has room again), and the interval itself, which now only bounds how long a new file waits to be
noticed, is short (``config/broker.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

# Both live inside the message folder, so renames in and out of them never cross a file system. Their
# names hold no ".<queue>.msg" suffix, so the stock listing code never mistakes them for messages.
WRITING_FOLDER = ".writing"
TAKEN_FOLDER = ".taken"


def write_atomically(path: Path, data: bytes, *, scratch: Path) -> None:
    """Make ``path`` hold ``data``: readers see the old file or the new one, never a part.

    ``scratch`` must exist and be on the same file system as ``path``.
    """
    partial = scratch / f"{uuid.uuid4()}.part"
    try:
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ChannelError(f"Cannot write {path}") from exc


def _folder(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


class QoS(virtual.QoS):
    """The prefetch window, which wakes its transport up when a message leaves it."""

    def ack(self, delivery_tag):
        super().ack(delivery_tag)
        self._wake_up()

    def reject(self, delivery_tag, requeue=False):
        super().reject(delivery_tag, requeue=requeue)
        self._wake_up()

    def _wake_up(self) -> None:
        transport = self.channel.connection
        if transport is not None:  # None once the channel is closed
            transport.window_has_room()


class Channel(filesystem.Channel):
    QoS = QoS

    # Made once per channel, not at every put and every poll.
    @cached_property
    def _out(self) -> Path:
        return Path(self.data_folder_out)

    @cached_property
    def _in(self) -> Path:
        return Path(self.data_folder_in)

    @cached_property
    def _writing(self) -> Path:
        return _folder(self._out / WRITING_FOLDER)

    @cached_property
    def _taken(self) -> Path:
        return _folder(self._in / TAKEN_FOLDER)

    @contextlib.contextmanager
    def _exchange_lock(self, exchange: str) -> Iterator[Path]:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        with open(file.with_name(file.name + ".lock"), "a") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield file
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _write_table(self, file: Path, queues: list) -> None:
        write_atomically(file, str_to_bytes(dumps(queues)), scratch=_folder(self.control_folder / WRITING_FOLDER))

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            table = loads(bytes_to_str(file.read_bytes()))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*row) for row in table]

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_lock(exchange) as file:
            queues = self.get_table(exchange)
            if binding not in queues:
                self._write_table(file, [binding, *queues])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._exchange_lock(exchange) as file:
            queues = self.get_table(exchange)
            if binding in queues:
                self._write_table(file, [row for row in queues if row != binding])

    def _put(self, queue, payload, **kwargs):
        # The millisecond prefix keeps the stock ordering: messages are taken oldest first.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        write_atomically(self._out / name, str_to_bytes(dumps(payload)), scratch=self._writing)

    def _get(self, queue):
        suffix = f"{queue}.msg"
        for name in sorted(os.listdir(self._in)):
            if name.partition(".")[2] != suffix:
                continue
            claimed = self._taken / name
            try:
                os.rename(self._in / name, claimed)
            except FileNotFoundError:
                continue  # another consumer took it first
            except OSError as exc:
                raise ChannelError(f"Cannot take {name} from the queue") from exc
            try:
                payload = claimed.read_bytes()
                if self.store_processed:
                    shutil.move(claimed, self.processed_folder)
                else:
                    claimed.unlink()
            except OSError as exc:
                raise ChannelError(f"Cannot read {claimed} from the queue") from exc
            return loads(bytes_to_str(payload))
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        # Set from the pool's result thread when a task's message is acknowledged.
        self._room = threading.Event()

    def window_has_room(self) -> None:
        self._room.set()

    def drain_events(self, connection, timeout=None):
        """Deliver one message; between empty polls, wait for an acknowledgement or the polling interval.

        The stock loop sleeps the whole interval even when the window frees up a moment later.
        """
        started = monotonic()
        while True:
            # Cleared before the poll: an acknowledgement during the poll makes the wait return at once.
            self._room.clear()
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            wait = self.polling_interval
            if timeout is not None:
                left = timeout - (monotonic() - started)
                if left <= 0:
                    raise TimeoutError()  # socket.timeout, what the worker loop expects
                wait = min(wait, left)
            self._room.wait(wait)

    @property
    def default_connection_params(self) -> dict[str, object]:
        # Folders on this machine have no host. kombu's default hostname ("localhost") made it warn "No
        # hostname was supplied" each time it described the connection (worker start, every clone).
        return {"port": self.default_port}
