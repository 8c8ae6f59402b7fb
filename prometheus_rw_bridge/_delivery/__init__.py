"""Getting encoded collections to the receivers: the bridge, per-endpoint senders, retries, the spool.

* ``bridge``: the collector thread, ``flush()`` and ``close()``; ``forks``: what a fork does to it;
* ``sender``: one ordered queue and delivery thread per endpoint; ``ledger``: its counters and logs;
* ``retry``: the one retry loop (``send_with_retries``, outcomes as ``Outcome``), used by the
  sender and by ``push_to_remote_write``; ``negotiate``: protocol ``auto``;
* ``spool`` (with ``spool_index``, ``spool_files``, ``spool_recovery``, ``spool_format``): the
  on-disk spool of requests;
* ``selfmetrics``: the ``prometheus_remote_storage_*`` families; ``setup``: settings to a bridge;
  ``groups``: endpoints grouped by their relabel rules, each group with encoders of its own.

Talks HTTP only through the ``Transport`` interface of ``_http``.
"""
