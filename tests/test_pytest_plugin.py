"""The pytest plugin, run the way a user's suite runs it (pytester, entry point loaded)."""

from __future__ import annotations


def test_sip_metrics_fixture_captures_strictly_and_shows_near_misses(pytester):
    pytester.makepyfile(
        """
        import pytest
        import sip_statsd

        def test_counts(sip_metrics):
            sip_statsd.invite_result("inbound", 200)
            sip_metrics.assert_count("sip_invite_result_total", 1, direction="inbound", code_class="2xx")

        def test_strict(sip_metrics):
            with pytest.raises(ValueError, match="direction='sideways'"):
                sip_statsd.invite_result("sideways", 200)

        def test_isolated_from_the_previous_test(sip_metrics):
            sip_metrics.assert_count("sip_invite_result_total", 0)

        def test_failure_message(sip_metrics):
            sip_statsd.invite_result("inbound", 486)
            sip_metrics.assert_count("sip_invite_result_total", 1, code_class="2xx")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*expected 1, got 0*", "*sip_invite_result_total{direction=inbound,code_class=4xx} = 1*"]
    )


def test_sip_statsd_wire_fixture_receives_real_datagrams(pytester):
    pytester.makepyfile(
        """
        import sip_statsd

        def test_wire(sip_statsd_wire):
            for _ in range(3):
                sip_statsd.bye_outbound("remote", "normal")
            sip_statsd.observe_call_qos(rtt_ms=42.0)
            totals = sip_statsd_wire.read()
            assert totals.count("sip_bye_total", direction="outbound", by="remote") == 3
            assert totals.sample_list("sip_call_rtt_ms") == [42.0]
            assert b"sip_bye_total:3|c|#direction:outbound,by:remote,reason_class:normal" in b"".join(
                sip_statsd_wire.datagrams()
            )

        def test_after():
            assert sip_statsd.default().config.host is None
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_run_that_uses_no_fixture_imports_nothing_and_starts_no_thread(pytester):
    """Installing the package must not change test runs that never ask for its fixtures."""
    pytester.makepyfile(
        """
        import sys
        import threading

        def test_plugin_loaded_but_library_untouched(request):
            assert request.config.pluginmanager.has_plugin("sip_statsd")
            loaded = sorted(m for m in sys.modules if m == "sip_statsd" or m.startswith(("sip_statsd.", "datadog")))
            assert loaded == []
            assert [t.name for t in threading.enumerate()] == ["MainThread"]

        def test_a_fixture_still_works(sip_metrics):
            import sip_statsd

            sip_statsd.stir_verify("verified")
            sip_metrics.assert_count("sip_stir_verify_total", 1, result="verified")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
