"""``manage.py api_token create USER [--name NAME]`` prints a new token once; ``revoke ID_OR_PREFIX``;
``list [USER]``."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken
from api.tokens import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create, revoke or list API tokens (sent as `Authorization: Bearer <token>`)."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        create = commands.add_parser("create", help="Create a token for USER and print it (shown only once).")
        create.add_argument("user")
        create.add_argument("--name", default="command line", help="What will use it, e.g. “chat bot”.")
        revoke = commands.add_parser("revoke", help="Revoke a token, by its id or the prefix `list` shows.")
        revoke.add_argument("token")
        listing = commands.add_parser("list", help="The tokens (never the tokens themselves).")
        listing.add_argument("user", nargs="?")

    def handle(self, *args, **options) -> None:
        getattr(self, f"_{options['command']}")(options)

    def _create(self, options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["user"]})
        except User.DoesNotExist:
            raise CommandError(f"There is no user {options['user']!r}.") from None
        if not user.is_active:
            raise CommandError(f"{user} is inactive: a token would not work.")
        row, token = api_token_create(user=user, name=options["name"])
        self.stderr.write(f"Token {row.pk} for {user} (its permissions are the user's). Shown only this once:")
        self.stdout.write(token)

    def _revoke(self, options) -> None:
        text = options["token"]
        rows = ApiToken.objects.filter(pk=int(text)) if text.isdigit() else ApiToken.objects.filter(prefix=text)
        ids = list(rows.values_list("pk", flat=True))
        if len(ids) != 1:
            raise CommandError(f"{len(ids)} tokens match {text!r}; give the id that `api_token list` shows.")
        if api_token_revoke(token_id=ids[0]):
            self.stdout.write(f"Revoked token {ids[0]}.")
        else:
            self.stdout.write(f"Token {ids[0]} was revoked already.")

    def _list(self, options) -> None:
        rows = ApiToken.objects.select_related("user").order_by("pk")
        if options["user"]:
            rows = rows.filter(user__username=options["user"])
        for row in rows:
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
            self.stdout.write(f"{row.pk}\t{row.prefix}…\t{row.user}\t{row.name}\t{state}\tlast used {used}")
