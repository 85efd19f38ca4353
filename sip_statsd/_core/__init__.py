"""The core: what records and what flushes, knowing nothing of SIP nor of the wire's formats.

A SIP helper touches only a `Series` (series.py) that a `Family` (family.py, gauge.py) made
at definition, with names and values checked once by `names.py`. The `Recorder`
(recorder.py) owns the families and takes their cells; its sending side (sending.py) hands a
`Batch` (batch.py) to a backend made through the registry in backend.py, on the flusher
thread (flusher.py). process.py is the process model: fork, exit, multiprocessing.

Read in the order the data goes: names → series → family/gauge → recorder → sending → backend.
"""
