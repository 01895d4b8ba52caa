"""The token endpoint, throttled like the sign-in form (see ``studio/security.py``)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.request import Request
from rest_framework.response import Response


class TokenApi(ObtainAuthToken):
    """Exchange a username and password for the user's API token.

    django-axes marks a locked-out attempt on the request that ``authenticate`` received,
    which here is DRF's wrapper: the mark is copied to the Django request so that
    ``AxesMiddleware`` answers it (429, the API's error shape) like any other sign-in. A
    token issued is a sign-in too (``user_logged_in``), which resets the failure count.
    """

    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
        finally:
            if getattr(request, "axes_locked_out", False):
                request._request.axes_locked_out = True
                request._request.axes_credentials = getattr(request, "axes_credentials", None)
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        user_logged_in.send(sender=type(user), request=request._request, user=user)
        return Response({"token": token.key})
