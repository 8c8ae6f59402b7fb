"""The remote-write protocol, pure: registry families to request bytes and back.

Wire primitives, names, the 1.0 and 2.0 encoders, snappy, the protobuf schema and decoding.
Nothing here does I/O, starts a thread or reads configuration; everything above may use it.
"""
