"""The remote-write protocol, pure: registry families to request bytes and back.

Nothing here does I/O, starts a thread or reads configuration; everything above may use it.

Reading the registry
    ``registry`` (``collect()``; ``read()``: the standard metric types directly), ``direct``
    (snapshots of prometheus_client's own metrics), ``assemble`` (their series' labels per child).
Encoding
    ``families`` (the per-family loop both encoders share), ``labels`` (a series' labels; how a
    sample left out is logged and counted), ``template`` (kept templates, packing, ownership,
    drop reasons), ``encode`` (1.0), ``encode_v2`` (2.0), ``metadata`` (a family's metadata
    entries, renamed by relabelling), ``samples`` and ``native`` (exemplars, start times, native
    histograms).
Wire
    ``tags`` (every field tag and the metric types), ``wire`` (primitives, varint reader),
    ``names`` (escaping, default target labels), ``encoded`` (encoded collections),
    ``batching`` (requests cut by series and bytes, halves for 413), ``snappy``, ``headers``.
Back
    ``schema`` (the protobuf descriptors), ``decode`` (bodies to Python objects).
Relabelling
    ``relabel`` (Prometheus's rules compiled and applied), ``relabel_check`` (a rule's fields and
    validation), ``go_regexp`` (Go's ``regexp`` over ``re``), ``re2`` and ``re2_syntax`` (RE2
    patterns parsed and translated for ``re``).
One-shot
    ``exposition`` (``generate_write_request``).
"""
