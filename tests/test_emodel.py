"""estimate_mos / r_factor against ITU-T G.107 (06/2015), written out here on their own.

`g107` below is the standard's formula set typed again from the Recommendation, with the
Table 3 defaults inline, independent of the module under test; the expected values of the
points the issue names come from it, and the two figures the standard itself publishes
(R 93.2 and MOS 4.41 with nothing impaired) are checked literally.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sip_statsd as sm

CODEC_IE_BPL = {"G.711": (0.0, 25.1), "G.729": (11.0, 19.0)}  # ITU-T G.113 Appendix I


def g107(t: float, ie: float, bpl: float, ppl: float, *, with_idd: bool = True) -> float:
    """R by G.107 clause 7 with the Table 3 defaults, for one-way delay T (Ta = T, Tr = 2T)."""
    slr, rlr, stmr, lstr, ds, telr, wepl = 8, 2, 15, 18, 3, 65, 110
    nc, nfor, ps, pr, qdu, a, burst_r, mt, st_ = -70, -64, 35, 35, 1, 0, 1, 100, 1
    ta, tr = t, 2 * t
    olr = slr + rlr
    nfo = nfor + rlr
    pre = pr + 10 * math.log10(1 + 10 ** ((10 - lstr) / 10))
    nor = rlr - 121 + pre + 0.008 * (pre - 35) ** 2
    nos = ps - slr - ds - 100 + 0.004 * (ps - olr - ds - 14) ** 2
    no = 10 * math.log10(10 ** (nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    ro = 15 - 1.5 * (slr + no)
    xolr = olr + 0.2 * (64 + no - rlr)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    stmro = -10 * math.log10(10 ** (-stmr / 10) + math.exp(-t / 4) * 10 ** (-telr / 10))
    ist = (
        12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
        - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
        - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13)
        + 29
    )
    q = 37 - 15 * math.log10(qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q * q
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * math.log10(1 + 10**y + 10**z)
    is_ = iolr + ist + iq
    roe = -1.5 * (no - rlr)
    terv = telr - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t * t)
    re = 80 + 2.5 * (terv - 14)
    idte = 0.0 if t < 1 else ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    rle = 10.5 * (wepl + 7) * (tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    if ta <= mt or not with_idd:
        idd = 0.0
    else:
        x = math.log10(ta / mt) / math.log10(2)
        idd = 25 * ((1 + x ** (6 * st_)) ** (1 / (6 * st_)) - 3 * (1 + (x / 3) ** (6 * st_)) ** (1 / (6 * st_)) + 2)
    ie_eff = ie + (95 - ie) * ppl / (ppl / burst_r + bpl)
    return ro - is_ - (idte + idle + idd) - ie_eff + a


def annex_b(r: float) -> float:
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def test_nothing_impaired_is_r_93_2_and_mos_4_41():
    assert sm.r_factor(0.0) == pytest.approx(93.2, abs=0.05)
    assert round(sm.estimate_mos(0.0), 2) == 4.41
    assert sm.r_factor(0.0) == pytest.approx(g107(0.0, 0.0, 25.1, 0.0), abs=1e-9)


@pytest.mark.parametrize(
    ("rtt_ms", "jitter_ms"),
    [(200.0, 0.0), (202.0, 0.0), (240.0, 5.0), (300.0, 0.0), (400.0, 25.0), (800.0, 0.0), (1500.0, 100.0)],
)
def test_delay_past_100_ms_one_way_follows_idd(rtt_ms, jitter_ms):
    t = rtt_ms / 2 + 2 * jitter_ms
    assert sm.r_factor(rtt_ms, jitter_ms) == pytest.approx(g107(t, 0.0, 25.1, 0.0), abs=1e-9)
    assert sm.estimate_mos(rtt_ms, jitter_ms) == pytest.approx(annex_b(g107(t, 0.0, 25.1, 0.0)), abs=1e-9)


def test_idd_starts_past_100_ms_one_way():
    """Up to Ta = 100 ms there is no Idd; at Ta = 200 ms (X = 1) it is 25((2)^1/6 - 3(1 + 3^-6)^1/6 + 2)."""
    for rtt in (150.0, 200.0):
        assert sm.r_factor(rtt) == pytest.approx(g107(rtt / 2, 0, 25.1, 0, with_idd=False), abs=1e-9)
    assert sm.r_factor(220.0) < g107(110.0, 0, 25.1, 0, with_idd=False) - 1e-6  # Idd starts flat: X^6 / 6
    idd_at_200 = 25 * (2 ** (1 / 6) - 3 * (1 + 3**-6) ** (1 / 6) + 2)
    assert idd_at_200 == pytest.approx(3.04, abs=0.01)
    assert sm.r_factor(400.0) == pytest.approx(g107(200.0, 0, 25.1, 0, with_idd=False) - idd_at_200, abs=1e-9)


@pytest.mark.parametrize("codec", ["G.711", "G.729"])
@pytest.mark.parametrize("loss", [0.01, 0.05, 0.20])
def test_packet_loss_for_each_codec(codec, loss):
    ie, bpl = CODEC_IE_BPL[codec]
    want = g107(0.0, ie, bpl, 100 * loss)
    assert sm.r_factor(0.0, 0.0, loss, codec) == pytest.approx(want, abs=1e-9)
    assert sm.estimate_mos(0.0, 0.0, loss, codec) == pytest.approx(annex_b(want), abs=1e-9)
    # Ie,eff alone, by hand: R falls from the unimpaired 93.2 by Ie + (95 - Ie) * Ppl / (Ppl + Bpl).
    ppl = 100 * loss
    assert sm.r_factor(0.0) - sm.r_factor(0.0, 0.0, loss, codec) == pytest.approx(
        ie + (95 - ie) * ppl / (ppl + bpl), abs=1e-9
    )


def test_a_realistic_call_combines_every_term():
    t = 80 / 2 + 2 * 12
    want = g107(t, 11.0, 19.0, 2.0)
    assert sm.r_factor(80.0, 12.0, 0.02, sm.Codec.G729) == pytest.approx(want, abs=1e-9)


def test_annex_b_conversion_and_its_bounds():
    assert sm.estimate_mos(0.0, 0.0, 1.0, "G.729") == pytest.approx(annex_b(g107(0, 11, 19, 100)), abs=1e-9)
    assert sm.estimate_mos(1e9) == 1.0  # R far below 0
    # Annex B's cubic dips to 0.99 for R between 0 and 6.5: held at 1.
    r_in_dip = sm.r_factor(400.0, 0.0, 1.0, "G.729")
    assert 0 < r_in_dip < 6.5
    assert annex_b(r_in_dip) < 1.0
    assert sm.estimate_mos(400.0, 0.0, 1.0, "G.729") == 1.0


def test_the_standards_echo_term_rises_just_above_1_ms():
    """G.107 sets Idte to 0 below T = 1 ms, and its formula is slightly negative just above:
    the one place where more delay rates a call higher, by about 0.11 R (0.002 MOS)."""
    rise = sm.r_factor(2.0) - sm.r_factor(1.998)
    assert rise == pytest.approx(g107(1.0, 0, 25.1, 0) - g107(0.999, 0, 25.1, 0), abs=1e-9)
    assert 0 < rise < 0.11


delays = st.floats(min_value=0.0, max_value=20_000.0, allow_nan=False)
losses = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
codecs = st.sampled_from(sm.CODECS)


def _allowed_rise(t_low: float, t_high: float) -> float:
    return 0.11 if t_low < 1 <= t_high else 1e-9


@settings(max_examples=300, deadline=None)
@given(delays, delays, delays, losses, codecs)
def test_r_never_rises_with_more_rtt(rtt_a, rtt_b, jitter, loss, codec):
    low, high = sorted((rtt_a, rtt_b))
    rise = sm.r_factor(high, jitter, loss, codec) - sm.r_factor(low, jitter, loss, codec)
    assert rise <= _allowed_rise(low / 2 + 2 * jitter, high / 2 + 2 * jitter)


@settings(max_examples=300, deadline=None)
@given(delays, delays, delays, losses, codecs)
def test_r_never_rises_with_more_jitter(jitter_a, jitter_b, rtt, loss, codec):
    low, high = sorted((jitter_a, jitter_b))
    rise = sm.r_factor(rtt, high, loss, codec) - sm.r_factor(rtt, low, loss, codec)
    assert rise <= _allowed_rise(rtt / 2 + 2 * low, rtt / 2 + 2 * high)


@settings(max_examples=300, deadline=None)
@given(losses, losses, delays, delays, codecs)
def test_mos_never_rises_with_more_loss(loss_a, loss_b, rtt, jitter, codec):
    low, high = sorted((loss_a, loss_b))
    assert sm.estimate_mos(rtt, jitter, high, codec) <= sm.estimate_mos(rtt, jitter, low, codec)


@settings(max_examples=300, deadline=None)
@given(delays, delays, losses)
def test_g729_never_rates_above_g711(rtt, jitter, loss):
    assert sm.r_factor(rtt, jitter, loss, "G.729") < sm.r_factor(rtt, jitter, loss, "G.711")


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-50.0, max_value=120.0), st.floats(min_value=-50.0, max_value=120.0))
def test_annex_b_is_monotonic_once_held_at_1(r_a, r_b):
    """Annex B, held at 1 where its cubic dips, never falls as R rises."""
    from sip_statsd._sip.emodel import mos_from_r

    low, high = sorted((r_a, r_b))
    assert mos_from_r(low) <= mos_from_r(high)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=0.0, max_value=1e300, allow_nan=False),
    st.floats(min_value=0.0, max_value=1e300, allow_nan=False),
    losses,
    codecs,
)
def test_mos_stays_within_1_and_4_5(rtt, jitter, loss, codec):
    if not math.isfinite(2 * (rtt / 2 + 2 * jitter)):  # a delay too large to represent
        with pytest.raises(ValueError, match="too large"):
            sm.estimate_mos(rtt, jitter, loss, codec)
        return
    assert 1.0 <= sm.estimate_mos(rtt, jitter, loss, codec) <= 4.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((math.nan,), "rtt_ms nan"),
        ((-1.0,), "rtt_ms -1.0"),
        ((math.inf,), "rtt_ms inf"),
        ((10.0, -0.5), "jitter_ms -0.5"),
        ((10.0, math.nan), "jitter_ms nan"),
        ((10.0, 1.0, 1.01), "loss_fraction 1.01"),
        ((10.0, 1.0, -0.1), "loss_fraction -0.1"),
        ((10.0, 1.0, math.nan), "loss_fraction nan"),
        ((10.0, 1.0, 0.0, "G.722"), "codec 'G.722'"),
        ((10.0, 1.0, 0.0, "g.711"), "codec 'g.711'"),
        ((10.0, 1.0, 0.0, ["G.711"]), r"codec \['G.711'\]"),
        ((True,), "rtt_ms True"),
        (("40",), "rtt_ms '40'"),
        ((None,), "rtt_ms None"),
        ((1e308, 1e308), "too large"),
    ],
)
def test_bad_input_raises_value_error_quoting_it(args, message):
    for function in (sm.estimate_mos, sm.r_factor):
        with pytest.raises(ValueError, match=message):
            function(*args)


def test_ints_and_codec_enum_members_are_accepted():
    assert sm.estimate_mos(40, 5, 0, sm.Codec.G711) == sm.estimate_mos(40.0, 5.0, 0.0, "G.711")
