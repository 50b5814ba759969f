"""GET /mcp/v1/tasks/<id>: the status of an async tool run, and its result when done (seed shape)."""
from django.urls import reverse
from rest_framework.response import Response
from rest_framework.views import APIView

from ..exceptions import TaskNotFound
from ..services.invocation import Caller
from ..services.tasks import task_as_dict, task_get
from .authentication import client_ip


def task_status_url(task_id: str) -> str:
    return reverse("rest-task", args=[task_id])


def queued_response(invocation) -> Response:
    """202 for an accepted async call: where to follow it."""
    url = task_status_url(invocation.task_id)
    return Response({"success": True, "task_id": invocation.task_id, "status": "working", "status_url": url},
                    status=202, headers={"Location": url})


class TaskStatusView(APIView):
    def get(self, request, task_id):
        caller = Caller(token=request.auth, client_ip=client_ip(request), transport="rest")
        try:
            task = task_get(task_id=task_id, caller=caller)
        except TaskNotFound as exc:
            return Response({"success": False, "error": exc.message}, status=404)
        body = {"task_id": task.pk, "status": task.status, "tool": task.tool_name, "task": task_as_dict(task)}
        if task.progress and not task.is_terminal:
            body["progress"] = task.progress  # the last {progress, total, message} the tool reported
        if task.status == task.Status.COMPLETED:
            return Response({"success": True, **body, "result": task.result})
        if task.status in (task.Status.FAILED, task.Status.CANCELLED):
            return Response({"success": False, **body, "error": task.error_message, "error_code": task.error_code})
        return Response({"success": True, **body}, headers={"Retry-After": str(max(1, task.poll_interval_ms // 1000))})
