"""Alert messages: Django templates rendered as plain text for each recipient."""

from __future__ import annotations

from django.template import Context, Engine

# Messages are plain text (SMS and text email): no HTML escaping of names like "O'Brien & Sons".
MESSAGE_ENGINE = Engine(autoescape=False)


def render_message(template: str, **context: object) -> str:
    return MESSAGE_ENGINE.from_string(template).render(Context(context))
