# One image for every process of the service: web (the default CMD), worker, beat and the migrate step.
# docker-compose.yml runs it; deploy/README.md says which command each service uses.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=config.settings \
    VAR_DIR=/app/var

# A fixed uid/gid, so that files in volumes keep one owner across image rebuilds.
RUN groupadd --system --gid 1000 app \
    && useradd --system --uid 1000 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app

# Requirements first: this layer is rebuilt only when requirements.txt changes. Every package is pinned.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code stays owned by root, read-only for the service. Only VAR_DIR and the worker's state folder
# (a named volume in docker-compose.yml; a fresh volume takes this folder's owner) are writable.
COPY . .
RUN mkdir -p /app/var /var/lib/celery \
    && chown app:app /app/var /var/lib/celery

USER app

# Settings refuse to load without SECRET_KEY when DEBUG is off. This key exists only for this RUN line:
# it is not kept in the image's environment, and nothing signed with it outlives the build.
RUN SECRET_KEY=build-only-collectstatic-not-a-secret DEBUG=false \
    python manage.py collectstatic --noinput

EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
