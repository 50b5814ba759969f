from .base import HandlerKind, register


@register
class EchoKind(HandlerKind):
    """Returns its arguments; for smoke tests, demos and benchmarks."""

    name = "echo"
    label = "Echo (returns the arguments)"
    config_schema = {"type": "object", "additionalProperties": False, "properties": {}}
    atomic = False

    def run(self, arguments, config, context):
        return {"echo": arguments}
