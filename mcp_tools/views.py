from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def health(request):
    """Liveness: the process answers. Dependencies are checked by /health/ready."""
    return JsonResponse({"status": "healthy", "version": settings.VERSION})
