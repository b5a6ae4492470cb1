"""``make bench``: the service against bare Celery on the real stack, in one run (see docs/benchmarks.md).

    python -m bench [--broker rabbitmq|redis] [--scale small|full] [--large] [--only fig,...]

Modules: ``stack`` (database, broker queues, processes, clean-up), ``bare`` and ``celery_app`` (the
baseline's no-op task and the app the workers load), ``data`` (fixtures and parallel enqueueing), one
module per figure, ``stats`` and ``progress`` (pure helpers). Importing this package imports no Django.
"""
