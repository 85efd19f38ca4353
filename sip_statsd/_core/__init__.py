"""The core: what records and what flushes, knowing nothing of SIP nor of the wire's formats.

A SIP helper touches only a `Series` (series.py) that a `Family` (family.py, gauge.py) made
at definition, with names and values checked once by `names.py`. The `Recorder`
(recorder.py) owns the families and composes four parts, each an object with one interface:
its `Take` (taking.py) reads the cells into a `Batch` (batch.py), whole or by family; its
`Sender` (sending.py) hands a batch to a backend made through the registry in backend.py and
counts its faults; and a delivery says who sends when, each with its own fork story:
`ThreadDelivery` (thread.py, our flusher thread, flusher.py), `HostDelivery` (host.py, the
host's own thread through `host_tick`, and every send on a caller's thread), `SharedDelivery`
(shared_delivery.py, one mapping of every process's counts, shared.py). process.py is the
process model: fork, exit, multiprocessing; child.py the order a forked child restarts the parts in.

Read in the order the data goes: names → series → family/gauge → recorder → taking → sending → backend.
"""
