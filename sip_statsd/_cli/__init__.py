"""The `sip-statsd` command: main.py parses and dispatches; demo.py simulates SIP traffic."""
