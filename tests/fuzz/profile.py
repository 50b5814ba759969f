"""The fuzz tests' hypothesis profile: few examples, no per-example deadline, so the suite stays fast.

Registered here and applied per test with ``@fuzz`` (never loaded globally, so other suites keep their own).
HYPOTHESIS_FUZZ_EXAMPLES raises the example count for a longer local run.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("HYPOTHESIS_FUZZ_EXAMPLES", "60")), deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
fuzz = settings.get_profile("fuzz")
