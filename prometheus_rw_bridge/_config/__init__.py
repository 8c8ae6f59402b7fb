"""Configuration: option declarations, parsers, settings objects and their resolution.

Explicit argument, then ``PROMETHEUS_REMOTE_WRITE_*`` environment variable, then default.
Feeds every layer above; knows nothing of threads or HTTP.
"""
