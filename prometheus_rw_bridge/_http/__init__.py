"""HTTP: the transport interface and its httpx implementation, the client factory and auth.

Everything that knows about httpx lives here; the layers above see only the transport
interface, its results and the package's error tree.
"""
