import logging

from rest_framework import exceptions
from rest_framework.views import exception_handler

from ..request_context import get_request_id
from .refusals import refusal_mark

logger = logging.getLogger("mcp_tools.transports")


def rest_exception_handler(exc, context):
    """DRF's handler, plus a generic, request-id-bearing answer for anything unexpected."""
    response = exception_handler(exc, context)
    if isinstance(exc, exceptions.NotAuthenticated) and context.get("request") is not None:
        refusal_mark(context["request"], "no_credential")  # a more precise mark, made earlier, wins
    if response is None:
        from rest_framework.response import Response

        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            {"detail": f"Internal server error. Quote request id {get_request_id()} to support."}, status=500)
    return response
