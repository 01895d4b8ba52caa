"""What every page of every app builds on: resolving the project a page belongs to, and
refusing a role politely (a 403 page, or the service's message on the form)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from studio import selectors
from studio.errors import ApplicationError, Forbidden, InvalidValues, NotFound
from studio.permissions import Capability, can


def member_view(fn):
    """Resolve ``slug`` to a project the user belongs to (404 otherwise) and pass it on."""

    @login_required
    @wraps(fn)
    def wrapper(request, slug, *args, **kwargs):
        try:
            project = selectors.project_get(user=request.user, slug=slug)
        except NotFound:
            raise Http404("Project not found")
        request.can_manage = can(request.user, project, Capability.MANAGE)
        request.can_contribute = can(request.user, project, Capability.CONTRIBUTE)
        try:
            return fn(request, project, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message)
        except Forbidden as exc:  # a role refused by a service the view did not catch
            raise PermissionDenied(exc.message)

    return wrapper


def require_allowed(allowed: bool, who: str) -> None:
    """Refuse a form page to a role that could not submit it (a 403 page, not a dead form)."""
    if not allowed:
        raise PermissionDenied(f"Only {who} can do this.")


def form_error(form, exc: ApplicationError) -> None:
    """Show a service's refusal on the form; a refused role is a 403 page, not a form error."""
    if isinstance(exc, Forbidden):
        raise PermissionDenied(exc.message)
    if isinstance(exc, InvalidValues):  # each refused value, as the model's validation said
        for message in exc.messages:
            form.add_error(None, message)
    else:
        form.add_error(None, exc.message)
