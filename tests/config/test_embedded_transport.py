"""The embedded broker's transport with several processes on one folder, as web, workers and beat use it."""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from config import broker as broker_config
from config.embedded_transport import TAKEN_FOLDER, WRITING_FOLDER

PRODUCERS = 3
CONSUMERS = 3
MESSAGES_PER_PRODUCER = 400
QUEUE = "race"


def connect(root: str) -> Connection:
    return Connection(
        broker_config.EMBEDDED_BROKER_URL,
        transport=broker_config.transport_class(broker_config.EMBEDDED_BROKER_URL),
        transport_options=broker_config.transport_options(broker_config.EMBEDDED_BROKER_URL, embedded_root=Path(root)),
    )


def produce(root: str, producer: int) -> None:
    with connect(root) as conn, conn.SimpleQueue(QUEUE) as q:
        for n in range(MESSAGES_PER_PRODUCER):
            q.put({"id": f"{producer}-{n}"})


def consume(root: str, received: multiprocessing.Queue, producers_done) -> None:
    got, errors = [], []
    with connect(root) as conn, conn.SimpleQueue(QUEUE) as q:
        while True:
            try:
                message = q.get(timeout=0.05)
            except queue.Empty:
                if producers_done.is_set():
                    break
                continue
            except Exception as exc:  # the stock transport fails here on a half-written file
                errors.append(repr(exc))
                continue
            got.append(message.payload["id"])
            message.ack()
    received.put((got, errors))


def bind(root: str, index: int) -> None:
    control = Exchange("broadcast", type="fanout")
    with connect(root) as conn:
        Queue(f"listener-{index}", control, channel=conn.default_channel).declare()


def run_all(processes: list[multiprocessing.Process]) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


@pytest.fixture
def root(tmp_path) -> str:
    return str(tmp_path)


def test_every_message_reaches_exactly_one_consumer_while_producers_write(root):
    context = multiprocessing.get_context("spawn")  # a fork would copy locks held by the suite's other threads
    received, producers_done = context.Queue(), context.Event()
    consumers = [context.Process(target=consume, args=(root, received, producers_done)) for _ in range(CONSUMERS)]
    producers = [context.Process(target=produce, args=(root, n)) for n in range(PRODUCERS)]
    for consumer in consumers:
        consumer.start()
    run_all(producers)
    producers_done.set()
    results = [received.get(timeout=120) for _ in consumers]
    for consumer in consumers:
        consumer.join(timeout=30)

    ids = [message_id for got, _ in results for message_id in got]
    assert [errors for _, errors in results] == [[]] * CONSUMERS
    assert len(ids) == len(set(ids)) == PRODUCERS * MESSAGES_PER_PRODUCER
    assert not list((Path(root) / "messages" / WRITING_FOLDER).iterdir())
    assert not list((Path(root) / "messages" / TAKEN_FOLDER).iterdir())


def test_bindings_made_at_once_by_many_processes_are_all_kept(root):
    context = multiprocessing.get_context("spawn")  # a fork would copy locks held by the suite's other threads
    listeners = 12
    run_all([context.Process(target=bind, args=(root, n)) for n in range(listeners)])

    with connect(root) as conn:
        table = conn.default_channel.get_table("broadcast")
    assert sorted(row.queue for row in table) == sorted(f"listener-{n}" for n in range(listeners))


def test_a_broadcast_reaches_every_bound_queue_and_a_deleted_one_no_more(root):
    control = Exchange("broadcast", type="fanout")
    with connect(root) as conn:
        channel = conn.default_channel
        queues = [Queue(f"listener-{n}", control, channel=channel) for n in range(3)]
        for q in queues:
            q.declare()
        queues[0].delete()
        with conn.Producer(channel) as producer:
            producer.publish({"hello": "all"}, exchange=control, declare=[control])
        deadline = time.monotonic() + 5
        messages = {}
        while time.monotonic() < deadline and len(messages) < 2:
            for q in queues[1:]:
                message = q.get(no_ack=True)
                if message is not None:
                    messages[q.name] = message.payload
        assert messages == {"listener-1": {"hello": "all"}, "listener-2": {"hello": "all"}}
        assert queues[0].get(no_ack=True) is None


# The stock transport would sleep 10 s per full window (500 s in all): fail well before that.
@pytest.mark.timeout(60)
def test_a_consumer_with_a_full_prefetch_window_takes_the_next_message_as_soon_as_one_is_acknowledged(root):
    # The prefork pool acknowledges from its result thread while the worker's loop waits in drain_events.
    # With an hour-long polling interval the stock transport sleeps through each full window until the
    # drain times out; here every drain ends with a delivery, because the acknowledgement wakes it.
    count = 50
    options = {
        **broker_config.transport_options(broker_config.EMBEDDED_BROKER_URL, embedded_root=Path(root)),
        "polling_interval": 3600,
    }
    conn = Connection(
        broker_config.EMBEDDED_BROKER_URL,
        transport=broker_config.transport_class(broker_config.EMBEDDED_BROKER_URL),
        transport_options=options,
    )
    received, timed_out = [], 0
    with conn, conn.SimpleQueue(QUEUE) as q:
        for n in range(count):
            q.put({"id": n})
        acks: queue.Queue = queue.Queue()
        acker = threading.Thread(target=lambda: [message.ack() for message in iter(acks.get, None)])
        acker.start()

        def on_message(body, message):
            received.append(body["id"])
            acks.put(message)

        try:
            with conn.Consumer(q.queue, callbacks=[on_message], prefetch_count=1):
                while len(received) < count:
                    try:
                        conn.drain_events(timeout=10)
                    except TimeoutError:
                        timed_out += 1
                        break
        finally:
            acks.put(None)
            acker.join(timeout=10)
    assert timed_out == 0
    assert sorted(received) == list(range(count))
