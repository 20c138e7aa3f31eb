"""btic's conformance kit, run against a small correct destination and against copies
of it each broken in one way the kit promises to catch: each copy fails it."""

from __future__ import annotations

import pytest
from kit_subject import CONFORMANCE_TESTS, plugin_source

pytest_plugins = ["pytester"]

#: what each flaw must fail (at least these tests of the kit)
CAUGHT_BY = {
    "none": set(),
    "never_deduplicates": {
        "test_redelivery_leaves_one_copy",
        "test_the_same_item_twice_leaves_one_copy",
    },
    "succeeds_in_an_outage": {
        "test_an_outage_fails_every_delivery_and_records_nothing",
        "test_failures_raise_destination_error",
    },
    "writes_in_place": {"test_a_crash_mid_delivery_leaves_no_partial_item"},
    "escapes": {"test_hostile_names_stay_inside"},
}


@pytest.mark.parametrize("flaw", list(CAUGHT_BY))
def test_the_kit_fails_each_broken_copy_and_passes_the_correct_one(
    flaw, pytester, distributions, monkeypatch
):
    site = distributions.make(
        f"btic-tiny-{flaw.replace('_', '-')}", "1.0", {"tiny": "tiny_mod:Tiny"},
        {"tiny_mod": plugin_source(flaw)},
    )  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.makepyfile(test_tiny=CONFORMANCE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=600)
    outcomes = result.parseoutcomes()
    failed = {
        line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")
    }
    if flaw == "none":
        assert failed == set(), result.outlines[-40:]
        assert outcomes.get("passed", 0) >= 8, outcomes
    else:
        assert CAUGHT_BY[flaw] <= failed, (flaw, failed, result.outlines[-40:])
