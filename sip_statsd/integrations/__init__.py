"""Instrumentation for real SIP stacks, each in its own module and imported only when asked for.

Nothing here is imported by `import sip_statsd`: a module of this package imports its stack
(which comes as an extra, e.g. `python -m pip install '.[sippy]'`) when it is itself imported.
"""
