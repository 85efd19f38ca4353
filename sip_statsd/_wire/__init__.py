"""The wire: from a flushed `Batch` to datagrams on a socket, and back.

backends.py (plain StatsD through pystatsd's formatting) and dogstatsd.py (DogStatsD, packed)
turn a batch into lines and register themselves with the core's backend registry;
transport.py owns the sockets (UDP and Unix, connected, faults classified where raised).
The other direction, for the demo, `listen` and the tests: lines.py parses datagrams and
receiver.py is the embedded receiver.
"""
