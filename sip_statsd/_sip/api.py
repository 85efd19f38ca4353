"""`SipMetrics`, the instance API, and the process-wide instance behind the module helpers."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TypedDict, Unpack

from .._core import process as _process  # noqa: F401 - registers the fork, exit and multiprocessing hooks
from .._core.config import Config, env_options
from .._core.default import default_recorder, shared_later
from .._core.family import Counter, Distribution, Family
from .._core.gauge import Gauge
from .._core.names import DEFAULT_MAX_SAMPLES
from .._core.recorder import DEFAULT_TIMEOUT, Recorder
from .._core.sending import Stats
from .._core.series import FLOAT_MAX
from .._wire import backends as _backends  # noqa: F401 - registers the datadog and statsd backends
from .._wire.agent import LABEL_KEYS_WITH_PEERS
from .catalog import SipCatalog, build_catalog, check_peers, check_response_codes
from .helpers import Helpers
from .peered import PeerView, make_peer_view
from .quality import QualityThresholds
from .values import DEFAULT_RESPONSE_CODES, PEER_OTHER

log = logging.getLogger("sip_statsd")


class Options(TypedDict, total=False):
    """The keyword arguments of `configure()` and `SipMetrics()`; see the README's table."""

    backend: str
    host: str | None
    port: int | None
    socket_path: str | None
    flavor: str
    prefix: str | None
    constant_tags: Mapping[str, str] | Iterable[str] | None
    flush_interval: float
    strict: bool
    packed: bool
    delivery: str
    receiver: str
    cardinality: str | None
    precision: int | None
    quality_thresholds: Mapping[str, float] | QualityThresholds | None


def make_config(options: Options, caller: str = "configure") -> Config:
    """A `Config` from keyword options, then `SIP_STATSD_*` for what they do not name, then defaults."""
    unknown = sorted(set(options) - {f.name for f in dataclasses.fields(Config)})
    if unknown:
        if "response_codes" in unknown:
            hint = "; the exact response codes are fixed per instance: SipMetrics(response_codes=[...])"
        elif "peers" in unknown:
            hint = (
                "; the peers are fixed per instance (their series are made with it): SipMetrics(peers=[...]), "
                f"or {PEERS_VARIABLE} for the module-level helpers"
            )
        else:
            hint = f" (options: {', '.join(f.name for f in dataclasses.fields(Config))})"
        raise TypeError(f"{caller}() got an unexpected option {unknown[0]!r}{hint}")
    return Config(**{**env_options(options), **options})


PEERS_VARIABLE = "SIP_STATSD_PEERS"
# Every label key of the SIP catalog and the library's own families (a test keeps it so).
LABEL_KEYS = frozenset(
    [
        "attestation",
        "by",
        "code",
        "code_class",
        "direction",
        "from",
        "grade",
        "issue",
        "kind",
        "method",
        "metric",
        "mode",
        "peer",
        "reason",
        "reason_class",
        "result",
        "to",
    ]
)
_env_logged: set[str] = set()


def env_peers(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The peers `SIP_STATSD_PEERS` names (comma-separated); a bad value is logged once and ignored."""
    text = (os.environ if environ is None else environ).get(PEERS_VARIABLE, "")
    if not text.strip():
        return ()
    try:
        return check_peers([name.strip() for name in text.split(",") if name.strip()])
    except ValueError as error:
        if text not in _env_logged:
            _env_logged.add(text)
            reason = str(error)  # it may quote the value: bounded as the value is
            shown = reason if len(reason) <= 200 else reason[:200] + "..."
            log.warning("sip-statsd: ignoring %s=%r (%s); no peers", PEERS_VARIABLE, text[:200], shown)
        return ()


def check_constant_tags(config: Config, families: Iterable[Family], peers: tuple[str, ...]) -> None:
    """With declared peers, no constant tag may take a label key of a family (`peer:edge-1` beside
    `peer:a` gives Datadog two peers per series): ValueError quoting the tag."""
    if not peers:
        return  # without peers, the series stay what they were, constant tags included
    keys = {key for family in families for key in family.label_keys}
    for tag in config.constant_tags:
        key = tag.split(":", 1)[0]
        if key in keys:
            raise ValueError(
                f"constant_tags: {tag!r} takes the label key {key!r} of this instance's series (peers "
                f"declared: {list(peers)}); name the constant tag otherwise"
            )


class SipMetrics(Helpers):
    """A recorder with its own configuration, SIP catalog and helpers.

    The module-level helpers are those of one process-wide instance; make your own
    for code that does not want module state:

    >>> metrics = SipMetrics(backend="statsd", flavor="graphite", port=8125)
    >>> metrics.invite_result("outbound", 200)
    >>> metrics.close()
    """

    def __init__(
        self,
        *,
        response_codes: Iterable[int] = DEFAULT_RESPONSE_CODES,
        peers: Iterable[str] | None = None,
        _recorder: Recorder | None = None,
        **options: Unpack[Options],
    ) -> None:
        """`response_codes`: the exact codes sip_invite_response_total keeps (any other code
        counts as its class); ints from 100 to 699, at most 100. `peers`: the far ends
        (carriers, trunks, gateways) the per-peer families split by, at most 10 label-safe
        names; any other peer counts as `other`; None reads SIP_STATSD_PEERS, and no peers
        leaves every series as it was without them. Both are fixed for the instance's life
        (its series are made now); the other options are `configure()`'s.
        """
        codes = check_response_codes(response_codes)  # before a recorder (and its thread) exists
        peer_names = env_peers() if peers is None else check_peers(peers)
        if peer_names:  # a DATADOG_TAGS tag on a label key is left out of every datadog backend from now on
            LABEL_KEYS_WITH_PEERS.update(LABEL_KEYS)
        shared: Config | None = None
        owned = _recorder is None
        if _recorder is None:
            config = make_config(options, "SipMetrics")
            if config.delivery == "shared":  # the mapping is made for the catalog's families, below
                shared, config = config, dataclasses.replace(config, delivery="thread")
            _recorder = Recorder(config, dormant=shared is not None)
        elif _recorder is default_recorder():
            shared = shared_later()
        self.recorder = _recorder
        # delivery="host": call at the end of each of the host's handlers (see HostDelivery.tick).
        self.host_tick: Callable[..., None] = _recorder.host_tick
        self.catalog: SipCatalog = build_catalog(_recorder, codes, peer_names)
        self.peers: tuple[str, ...] = peer_names
        if owned:
            try:
                check_constant_tags(shared or _recorder.config, _recorder.families, peer_names)
            except ValueError:
                _recorder.close(0)
                raise
        self._views: dict[str, PeerView] = {}
        super().__init__(self.catalog)
        _recorder._helper_roots.add(self)  # delivery="shared" points these helpers' tables at shared cells
        if shared is not None:  # every family of the catalog (peers multiply them) gets its shared cells
            _recorder.reconfigure(shared)

    def peer(self, name: str | None) -> PeerView:
        """The hot helpers bound to peer `name` (an undeclared name: `other`), made once and kept.

        Each costs what the helper costs on an instance without peers: bind the view where
        the peer is known (a trunk, a call leg) instead of passing `peer=` on every call.
        Without declared peers the view's helpers are this instance's own.

        >>> carrier = metrics.peer("carrier-a")
        >>> carrier.invite_result("outbound", 486)
        """
        key = name if name in self.peers else PEER_OTHER
        view = self._views.get(key)
        if view is None:
            if self.peers:
                view = make_peer_view(self.catalog, key)
            else:
                view = PeerView(
                    key,
                    self.invite_result,
                    self.transaction_timeout,
                    self.request_result,
                    self.call_started,
                    self.call_ended,
                    self.observe_setup_delay,
                    self.observe_call_qos,
                )
            view = self._views.setdefault(key, view)
        return view

    def configure(self, **options: Unpack[Options]) -> None:
        """Replace the whole configuration (unnamed options take their defaults).

        What was recorded is first flushed to the backend that was active. A bad
        option raises ValueError quoting it, and the old configuration stays.
        """
        config = make_config(options)
        check_constant_tags(config, self.families, self.peers)
        self.recorder.reconfigure(config)

    @property
    def config(self) -> Config:
        return self.recorder.config

    def flush(self, timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        """Send everything recorded so far; False if `timeout` seconds passed first.

        The send happens on the flusher thread, so this never resolves a name or touches
        the network on the caller's thread.
        """
        return self.recorder.flush(timeout)

    def close(self, timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        """Flush, then stop the flusher and close the backend. `configure()` starts it again."""
        return self.recorder.close(timeout)

    def stats(self, timeout: float | None = DEFAULT_TIMEOUT) -> Stats:
        """Totals since start, after a flush waited for at most `timeout` seconds.

        Dropped inputs by (metric, reason), send errors by kind (in metric values), flushes,
        and lines the network took.
        """
        return self.recorder.stats(timeout)

    @property
    def families(self) -> tuple[Family, ...]:
        """Every family of this instance: the SIP catalog, the library's own, and yours."""
        return self.recorder.families

    def counter(
        self, name: str, labels: Mapping[str, Iterable[str]] | None = None, *, description: str = ""
    ) -> Counter:
        """Define a counter family on this instance (see `Counter`)."""
        return Counter(name, labels, description=description, recorder=self.recorder)

    def distribution(
        self,
        name: str,
        labels: Mapping[str, Iterable[str]] | None = None,
        *,
        minimum: float = -FLOAT_MAX,
        maximum: float = FLOAT_MAX,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        description: str = "",
    ) -> Distribution:
        """Define a distribution family on this instance (see `Distribution`)."""
        return Distribution(
            name,
            labels,
            minimum=minimum,
            maximum=maximum,
            max_samples=max_samples,
            description=description,
            recorder=self.recorder,
        )

    def gauge(self, name: str, labels: Mapping[str, Iterable[str]] | None = None, *, description: str = "") -> Gauge:
        """Define a gauge family on this instance (see `Gauge`)."""
        return Gauge(name, labels, description=description, recorder=self.recorder)


DEFAULT = SipMetrics(_recorder=default_recorder())
