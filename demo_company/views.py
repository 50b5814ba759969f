"""Stand-ins for the company's internal CRM and billing APIs, so the demo's
http_request tools have something real to call. Loopback callers only."""
import ipaddress
import json

from django.db.models import Q, Sum
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Customer, Order


def _loopback_only(view):
    def wrapper(request, *args, **kwargs):
        try:
            local = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
        except ValueError:
            local = False
        if not local:
            return JsonResponse({"error": "internal API: loopback callers only"}, status=403)
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "malformed JSON"}, status=400)
        return view(request, body if isinstance(body, dict) else {}, *args, **kwargs)
    return wrapper


@csrf_exempt
@require_POST
@_loopback_only
def crm_search(request, body):
    query = Q()
    if body.get("email"):
        query &= Q(email__iexact=body["email"])
    if body.get("name"):
        query &= Q(name__icontains=body["name"])
    customers = Customer.objects.filter(query).order_by("id")[:20] if query else []
    return JsonResponse({"customers": [
        {"customer_id": c.pk, "name": c.name, "email": c.email, "state": c.state, "plan": c.plan}
        for c in customers]})


@csrf_exempt
@require_POST
@_loopback_only
def billing_invoice(request, body):
    customer = Customer.objects.filter(pk=body.get("customer_id")).first()
    if customer is None:
        return JsonResponse({"error": "no such customer"}, status=404)
    unpaid = Order.objects.filter(customer=customer, status="unpaid")
    total = unpaid.aggregate(total=Sum("total_cents"))["total"] or 0
    return JsonResponse({"customer_id": customer.pk, "order_ids": list(unpaid.values_list("pk", flat=True)),
                         "amount_cents": total, "currency": "USD", "status": "issued" if total else "nothing_due"})
