"""Who may use the job pages and their actions: staff only, and the job model's permissions for the actions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the admin's login page; logged-in users who are not staff get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            if is_htmx(request):
                # A poll after the session ended: send the whole page to the login, not a fragment.
                current = urlsplit(request.headers.get("HX-Current-URL", ""))
                next_url = urlunsplit(("", "", current.path, current.query, "")) or reverse("scheduler:job_list")
                login = redirect_to_login(next_url, resolve_url(settings.LOGIN_URL))
                return HttpResponse(headers={"HX-Redirect": login.url})
            return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("The job pages are for staff only.")
        return view(request, *args, **kwargs)

    return never_cache(wrapper)


# What each kind of action needs besides being staff: the job model's own permissions, as in the admin, so
# that a staff account allowed only to look (view) cannot cancel, run, settle or delete.
CHANGE_JOBS = "scheduler.change_job"
DELETE_JOBS = "scheduler.delete_job"


def require_permission(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        verb = "delete" if permission == DELETE_JOBS else "cancel, run or settle"
        raise PermissionDenied(f"Your account may look at jobs but not {verb} them ({permission}).")


def permission_required(permission: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Under ``staff_required``: a staff user without ``permission`` gets 403 and nothing changes."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            require_permission(request, permission)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def operator_name(request: HttpRequest) -> str:
    return request.user.get_username()
