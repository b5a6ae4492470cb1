"""Alert messages: Django templates rendered as plain text for each recipient."""

from __future__ import annotations

import re

from django.template import Context, Engine
from django.template.base import Lexer, TokenType, tag_re

# Messages are plain text (SMS and text email): no HTML escaping of names like "O'Brien & Sons".
MESSAGE_ENGINE = Engine(autoescape=False)


def render_message(template: str, **context: object) -> str:
    return MESSAGE_ENGINE.from_string(template).render(Context(context))


_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
EXAMPLES = {"}}": "{{ contact.name }}", "%}": "{% if contact.name %}…{% endif %}", "#}": "{# a note #}"}
_OPENER = re.compile(r"\{\{|\{%|\{#")


def unclosed_tag(template: str) -> tuple[str, str] | None:
    """The first ``{{``, ``{%`` or ``{#`` left open, as (what follows it on its line, the closer it needs).

    Django's lexer reads a tag only when it closes on the same line, and passes anything else through as
    text: ``Hi {{ contact.name`` would be sent as typed.
    """
    for token in Lexer(template).tokenize():
        # A whole tag inside {% verbatim %} comes back as text: it is closed.
        if token.token_type != TokenType.TEXT or tag_re.fullmatch(token.contents):
            continue
        match = _OPENER.search(token.contents)
        if match:
            rest = token.contents[match.start() :].splitlines()[0]
            return rest[:40], _CLOSERS[match.group()]
    return None
