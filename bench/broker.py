"""The run's queues in the broker: their depth, purging them, the broker's memory, and removing them at the end."""

from __future__ import annotations

import json
import os
import subprocess

from bench.progress import note


class BrokerQueues:
    """What ``Stack`` does with the broker; it sets these attributes and the ``queues`` mapping."""

    broker: str
    broker_url: str
    tag: str
    queues: dict[str, str]

    def broker_memory(self) -> int | None:
        """The broker's memory in bytes: RabbitMQ's Erlang VM total, Redis's ``used_memory``."""
        if self.broker == "embedded":
            return None
        try:
            if self.broker == "redis":
                import redis

                return int(redis.Redis.from_url(self.broker_url).info("memory")["used_memory"])
            out = subprocess.run(
                ["rabbitmqctl", "status", "--formatter", "json"], capture_output=True, timeout=60, check=True
            ).stdout
            return int(json.loads(out)["memory"]["total"]["erlang"])
        except Exception as exc:  # a remote broker, no rabbitmqctl: the figure says "n/a"
            note(f"  (broker memory not available: {exc.__class__.__name__}: {exc})")
            return None

    def queue_depth(self, queue: str) -> int:
        """Messages ready in the broker's queue (not those a worker holds unacknowledged)."""
        from config.celery import app

        # Not passive: kombu's Redis transport has no queue once its list is empty.
        with app.connection_for_write() as conn:
            name = self.queues[queue]
            return conn.default_channel.queue_declare(queue=name, durable=True, auto_delete=False).message_count

    def purge_queues(self) -> None:
        from config.celery import app

        with app.connection_for_write() as conn:
            for name in self.queues.values():
                conn.default_channel.queue_declare(queue=name, durable=True, auto_delete=False)
                conn.default_channel.queue_purge(name)

    def forget_unacked(self) -> None:
        """Redis keeps what a killed worker held in its ``unacked`` hash, to restore it later: drop ours."""
        if self.broker == "redis":
            self._forget_redis_keys(queues_too=False)

    def _queue_names(self) -> list[str]:
        prefix = f"{self.tag}-"
        queues = os.environ.get("JOB_QUEUES", "default,sms,email,webhook,maintenance")
        names = [f"{prefix}{name}" for name in queues.split(",")]
        return [name.strip() for name in names]

    def _delete_queues(self) -> None:
        if self.broker == "embedded":
            return  # its folder goes with the temporary folder
        from kombu import Connection

        with Connection(self.broker_url, connect_timeout=5) as conn:
            channel = conn.default_channel
            for name in self._queue_names():
                try:
                    channel.queue_delete(name)
                except Exception:
                    channel = conn.channel()  # RabbitMQ closes the channel on a missing queue
        if self.broker == "redis":
            self._forget_redis_keys()

    def _forget_redis_keys(self, *, queues_too: bool = True) -> None:
        """Keys named after the run, and the messages a killed worker left in Redis's ``unacked`` hash."""
        import redis

        client = redis.Redis.from_url(self.broker_url)
        for pattern in (f"*{self.tag}-*", f"*{self.tag}w*") if queues_too else ():  # queues, bindings, pidboxes
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
        if queues_too:  # the workers' pidbox queues in the shared fanout bindings (celery.pidbox)
            for key in client.scan_iter(match="_kombu.binding.*", count=1000):
                if client.type(key) == b"set":
                    ours = [m for m in client.sscan_iter(key, count=1000) if f"{self.tag}w".encode() in m]
                    if ours:
                        client.srem(key, *ours)
        mine = f"{self.tag}-".encode()
        ours = [tag for tag, payload in client.hscan_iter("unacked", count=1000) if mine in payload[-512:]]
        for start in range(0, len(ours), 1000):
            chunk = ours[start : start + 1000]
            client.hdel("unacked", *chunk)
            client.zrem("unacked_index", *chunk)
