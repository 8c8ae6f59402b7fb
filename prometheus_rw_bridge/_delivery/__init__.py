"""Getting encoded collections to the receivers: the bridge, per-endpoint senders, retries.

The collector thread (``bridge``), one ordered sender per endpoint (``sender``), the one retry
loop (``retry``), protocol negotiation and the self-metrics.  Talks HTTP only through the
transport interface of ``_http``.
"""
