"""Getting encoded collections to the receivers: the bridge, per-endpoint senders, retries, the spool.

* ``bridge``: the collector thread, ``flush()`` and ``close()``; ``forks``: what a fork does to it;
  ``collection``: what one collection becomes for each endpoint;
* ``sender``: one ordered queue and delivery thread per endpoint; ``ledger``: its counters and logs;
* ``deliver``: delivering one collection (the 2.0 probe, the 1.0 fallback), on ``lanes``
  (``max_shards`` requests at once), for the sender and for ``oneshot`` (``push_to_remote_write``);
* ``retry``: the one retry loop (``send_with_retries``, outcomes as ``Outcome``); ``negotiate``:
  protocol ``auto``;
* ``spool`` (with ``spool_index``, ``spool_files``, ``spool_recovery``, ``spool_format``): the
  on-disk spool of requests; ``spooled``: the queue's side of it (write, read back, replay);
* ``groups``: endpoints grouped by their relabel rules, each group with encoders of its own;
* ``selfmetrics``: the ``prometheus_remote_storage_*`` families; ``setup``: settings to a bridge.

Talks HTTP only through the ``Transport`` interface of ``_http``.
"""
