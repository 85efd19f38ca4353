"""The ITU-T G.107 (06/2015) E-model: a call's rating R and its MOS from RTT, jitter and loss.

Every parameter keeps its G.107 Table 3 default except those the network sets:

- the one-way delay `T = Ta = rtt_ms / 2 + 2 * jitter_ms` (the jitter buffer taken as
  twice the jitter) and the round trip of the echo path `Tr = 2 * T`;
- `Ie` and `Bpl` of the codec, from ITU-T G.113 Appendix I;
- `Ppl = 100 * loss_fraction`, with `BurstR = 1` (random loss).

The whole formula set is computed (Ro, Is with Iolr, Ist and Iq, Id with Idte, Idle and
Idd, Ie,eff), not a simplified variant; comments name the clause of G.107 (06/2015) each
line comes from. Pure functions, off the hot path: bad input raises ValueError.
"""

from __future__ import annotations

import math

from .values import CODEC_G711, CODEC_G729

# --- Clause 7.7, Table 3: default values (the terminal and circuit parameters) -----------
SLR = 8.0  # send loudness rating, dB
RLR = 2.0  # receive loudness rating, dB
STMR = 15.0  # sidetone masking rating, dB
DR = 3.0  # D-value of the telephone, receive side
LSTR = STMR + DR  # listener sidetone rating, dB (18, Table 3)
DS = 3.0  # D-value of the telephone, send side
TELR = 65.0  # talker echo loudness rating, dB
WEPL = 110.0  # weighted echo path loss, dB
QDU = 1.0  # number of quantization distortion units
NC = -70.0  # circuit noise referred to the 0 dBr point, dBm0p
NFOR = -64.0  # noise floor at the receive side, dBmp
PS = 35.0  # room noise at the send side, dB(A)
PR = 35.0  # room noise at the receive side, dB(A)
A = 0.0  # advantage factor
S_T = 1.0  # delay sensitivity, sT (default class)
M_T = 100.0  # minimum perceivable delay, mT, ms (default class)
BURST_R = 1.0  # burst ratio: 1 is random loss

# Equipment impairment factor Ie and packet-loss robustness factor Bpl, ITU-T G.113 Appendix I.
CODEC_IMPAIRMENT: dict[str, tuple[float, float]] = {
    CODEC_G711: (0.0, 25.1),  # G.711 with packet-loss concealment
    CODEC_G729: (11.0, 19.0),  # G.729A with VAD
}


def _delay_free_terms() -> tuple[float, float, float, float]:
    """Ro, Iolr, Iq and No: the terms that no delay, codec or loss changes (clauses 7.2, 7.3)."""
    olr = SLR + RLR  # 7.2: overall loudness rating
    nfo = NFOR + RLR  # 7.2: noise floor at the receive side, Nfo
    pre = PR + 10 * math.log10(1 + 10 ** ((10 - LSTR) / 10))  # 7.2: effective room noise, Pre
    nor = RLR - 121 + pre + 0.008 * (pre - 35) ** 2  # 7.2: room noise at the receive side, Nor
    nos = PS - SLR - DS - 100 + 0.004 * (PS - olr - DS - 14) ** 2  # 7.2: room noise at the send side, Nos
    no = 10 * math.log10(10 ** (NC / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))  # 7.2: No
    ro = 15 - 1.5 * (SLR + no)  # 7.2: basic signal-to-noise ratio, Ro
    xolr = olr + 0.2 * (64 + no - RLR)  # 7.3: Xolr
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)  # 7.3: too-low overall loudness, Iolr
    q = 37 - 15 * math.log10(QDU)  # 7.3: Q from the quantization distortion units
    g = 1.07 + 0.258 * q + 0.0602 * q**2  # 7.3: G
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9  # 7.3: Y
    z = 46 / 30 - g / 40  # 7.3: Z
    iq = 15 * math.log10(1 + 10**y + 10**z)  # 7.3: quantizing distortion, Iq
    return ro, iolr, iq, no


RO, IOLR, IQ, NO = _delay_free_terms()


def _sidetone_impairment(t: float) -> float:
    """Ist, the impairment by non-optimum sidetone, for mean one-way delay `t` (clause 7.3)."""
    stmro = -10 * math.log10(10 ** (-STMR / 10) + math.exp(-t / 4) * 10 ** (-TELR / 10))  # 7.3: STMRo
    ist: float = (
        12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
        - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
        - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13)
        + 29
    )  # 7.3: Ist
    return ist


def _delay_impairment(t: float, ta: float, tr: float, ist: float) -> float:
    """Id = Idte + Idle + Idd for mean one-way delay `t`, absolute delay `ta`, round trip `tr` (7.4)."""
    if t < 1:
        idte = 0.0  # 7.4: below 1 ms the talker echo counts as sidetone, Idte = 0
    else:
        roe = -1.5 * (NO - RLR)  # 7.4: Roe
        terv = TELR - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t * t)  # 7.4: TERV
        if STMR < 9:
            terv += ist / 2  # 7.4: TERVs, for STMR below 9 dB (not with the default 15 dB)
        re = 80 + 2.5 * (terv - 14)  # 7.4: Re
        idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))  # 7.4: Idte
        if STMR > 20:
            idte = math.sqrt(idte**2 + ist**2)  # 7.4: Idtes, for STMR above 20 dB (not with the default)
    rle: float = 10.5 * (WEPL + 7) * (tr + 1) ** -0.25  # 7.4: Rle
    idle = (RO - rle) / 2 + math.sqrt((RO - rle) ** 2 / 4 + 169)  # 7.4: listener echo, Idle
    idd: float
    if ta <= M_T:
        idd = 0.0  # 7.4: no impairment by absolute delay up to mT
    else:
        x = math.log10(ta / M_T) / math.log10(2)  # 7.4: X
        k = 6 * S_T
        idd = 25 * ((1 + x**k) ** (1 / k) - 3 * (1 + (x / 3) ** k) ** (1 / k) + 2)  # 7.4: too-long delay, Idd
    return idte + idle + idd  # 7.4: Id


def _check(name: str, value: object, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} {value!r} must be a number")
    number = float(value)
    if not 0.0 <= number <= high or number == math.inf:  # NaN fails the chained comparison
        raise ValueError(f"{name} {value!r} must be " + ("from 0 to 1" if high == 1.0 else "finite and >= 0"))
    return number


def r_factor(rtt_ms: float, jitter_ms: float = 0.0, loss_fraction: float = 0.0, codec: str = CODEC_G711) -> float:
    """The ITU-T G.107 transmission rating R of a call: 93.2 unimpaired, lower (even negative) when worse.

    `rtt_ms` and `jitter_ms` as RTCP reports them (milliseconds), `loss_fraction` 0 to 1,
    `codec` "G.711" (with packet-loss concealment) or "G.729" (G.729A with VAD). NaN,
    infinite or negative values, a loss above 1 or another codec raise ValueError.

    >>> round(r_factor(0.0), 1)
    93.2
    """
    rtt = _check("rtt_ms", rtt_ms)
    jitter = _check("jitter_ms", jitter_ms)
    loss = _check("loss_fraction", loss_fraction, 1.0)
    try:
        ie, bpl = CODEC_IMPAIRMENT[codec]
    except (KeyError, TypeError):
        raise ValueError(f"codec {codec!r} is not one of {list(CODEC_IMPAIRMENT)}") from None
    t = rtt / 2 + 2 * jitter  # mean one-way delay T: half the RTT plus a jitter buffer of twice the jitter
    if not math.isfinite(2 * t):
        raise ValueError(f"rtt_ms {rtt_ms!r} and jitter_ms {jitter_ms!r} give a delay too large to rate")
    ta, tr = t, 2 * t  # absolute delay Ta and round-trip delay Tr of the four-wire loop
    ist = _sidetone_impairment(t)
    is_ = IOLR + ist + IQ  # 7.3: simultaneous impairment factor, Is
    id_ = _delay_impairment(t, ta, tr, ist)
    ppl = 100 * loss  # packet-loss probability, percent
    ie_eff = ie + (95 - ie) * ppl / (ppl / BURST_R + bpl)  # 7.5: effective equipment impairment, Ie,eff
    return RO - is_ - id_ - ie_eff + A  # 7.1: R


def mos_from_r(r: float) -> float:
    """MOS (conversational quality, estimated) from R, per G.107 Annex B; 1 to 4.5.

    Annex B's cubic dips below 1 (to 0.99) for R between 0 and 6.5; it is held at 1 there,
    so the MOS never leaves 1-4.5 and never rises as R falls.
    """
    if r < 0:
        return 1.0  # Annex B: R below 0
    if r > 100:
        return 4.5  # Annex B: R above 100
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)  # Annex B: 0 <= R <= 100


def estimate_mos(rtt_ms: float, jitter_ms: float = 0.0, loss_fraction: float = 0.0, codec: str = CODEC_G711) -> float:
    """The MOS of a call from its RTCP numbers, by the ITU-T G.107 E-model; 1 to 4.5.

    Same arguments as `r_factor`. With nothing impaired the MOS is 4.41 (R 93.2).

    >>> round(estimate_mos(rtt_ms=40.0, jitter_ms=5.0, loss_fraction=0.01), 2)
    4.3
    >>> observe_call_qos(rtt_ms=40.0, jitter_ms=5.0, loss_fraction=0.01,
    ...                  mos_estimate=estimate_mos(40.0, 5.0, 0.01))  # doctest: +SKIP
    """
    return mos_from_r(r_factor(rtt_ms, jitter_ms, loss_fraction, codec))
