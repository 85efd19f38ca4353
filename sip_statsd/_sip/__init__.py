"""The SIP catalog: the metrics a SIP service emits, and the helpers it calls.

values.py names every metric and allowed value (constants and `StrEnum`s); catalog.py
declares the families with the core's public API; helpers.py, kpis.py and qos.py are the
hot-path helpers over pre-bound series; quality.py and emodel.py grade a call (ITU-T G.107);
api.py is `SipMetrics`, the instance API, and the process-wide instance.
"""
