"""Read prometheus_client's own metrics straight from their children, without ``collect()``.

``collect()`` spends its time building a ``Sample`` named tuple and a label dict for every
sample.  For the standard metric types (``Counter``, ``Gauge``, ``Summary``, ``Histogram``,
``Info``, ``Enum``) the series a metric yields are fixed by its children's label values (and,
for ``Info``, each child's info dict): :func:`read_metric` snapshots those, which is cheap, and
returns a :class:`DirectFamily`.  The encoders compare the snapshot's :attr:`~DirectFamily.shape`
with the one their template was built from; while it holds they only need
:meth:`~DirectFamily.values`, every sample's value in ``collect()`` order, read from the
children's value cells in C-speed loops.  Only when the shape changes do they read
:attr:`~DirectFamily.samples`, which builds the samples ``collect()`` would have yielded, from
the same snapshot.

Only the prometheus_client versions whose internals were checked here are read this way (see
:data:`CHECKED_VERSIONS`); so are only exact instances of the six classes, in single-process
mode, with no instance-level overrides.  Everything else is ``None`` from :func:`read_metric`,
and the caller collects it as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from operator import attrgetter
from typing import Any

from prometheus_client import metrics as _metrics
from prometheus_client import values as _values
from prometheus_client.samples import Sample

from . import assemble as _assemble
from .assemble import Plan
from .kinds import INFO, KINDS, Kind

__all__ = ["CHECKED_VERSIONS", "DirectFamily", "enabled", "read_metric"]

CHECKED_VERSIONS = ((0, 17), (0, 26))
"""The first and last prometheus_client minor versions whose metric internals this module reads.

From 0.17 to 0.26 every ``_child_samples``, ``_metric_init`` and ``MutexValue`` is the same
(compared as syntax trees); only ``collect()`` gained the native-histogram field, which these
types never set.  A version outside this range is collected the ordinary way.
"""



def _version_checked() -> bool:
    try:
        parts = metadata.version("prometheus_client").split(".")
        version = (int(parts[0]), int(parts[1]))
    except (metadata.PackageNotFoundError, ValueError, IndexError):
        return False
    return CHECKED_VERSIONS[0] <= version <= CHECKED_VERSIONS[1]


_CHECKED = _version_checked()


def enabled() -> bool:
    """Tell whether metrics can be read directly now (checked version, single-process values)."""
    return _CHECKED and _values.ValueClass is _values.MutexValue


class DirectFamily:
    """One metric's children, snapshotted; stands in for the ``Metric`` that ``collect()`` returns.

    ``name``, ``type``, ``documentation``, ``unit`` and :attr:`samples` are those of the
    collected family, so code that reads families reads this one unchanged.
    """

    __slots__ = (
        "_kind",
        "_samples",
        "_values",
        "children",
        "created",
        "documentation",
        "infos",
        "keys",
        "name",
        "source",
        "type",
        "unit",
    )

    def __init__(self, source: Any, kind: Kind, keys: list[Any], children: list[Any]) -> None:
        self.source = source
        self._kind = kind
        self.name: str = source._name
        self.type: str = source._type
        self.documentation: str = source._documentation
        self.unit: str = source._unit
        self.keys = keys  # each child's label values, in collect() order
        self.children = children
        self.created: bool = bool(_metrics._use_created) and kind.has_created
        # An Info child's labels are its info dict, which info() replaces (never mutates).
        self.infos = [child._value for child in children] if kind is INFO else None
        self._samples: list[Any] | None = None
        self._values: list[Any] | None = None

    @property
    def shape(self) -> tuple[Any, ...]:
        """What fixes the names and labels of the samples: equal shapes, equal sample keys."""
        return (self.source, self.created, self.keys, self.infos)

    def same_shape(self, shape: tuple[Any, ...] | None) -> bool:
        """Tell whether ``shape`` (from an earlier read) gives the same samples as this read."""
        return (
            shape is not None
            and shape[0] is self.source
            and shape[1] == self.created
            and shape[2] == self.keys
            and shape[3] == self.infos
        )

    def values(self) -> list[Any]:
        """Return every sample's value in ``collect()`` order (read once per snapshot)."""
        if self._values is None:
            self._values = self._kind.values(self.children, self.created)
        return self._values

    def plan(self, target: Mapping[str, str]) -> Plan | None:
        """Plan this family's series labels per child (see :mod:`.assemble`), or ``None``."""
        layout = self._kind.layout(self.source, self.created)
        if layout is None:
            return None
        return _assemble.plan(self, layout, self._kind.extra_label(self.source), target)

    def exemplars(self) -> list[Any] | None:
        """Every sample's exemplar (or ``None``) in ``collect()`` order; ``None`` when there are none."""
        return self._kind.exemplars(self.children, self.created)

    @property
    def samples(self) -> list[Any]:
        """The samples ``collect()`` would yield for this snapshot (built on first use)."""
        if self._samples is None:
            self._samples = self._build_samples()
        return self._samples

    def _build_samples(self) -> list[Any]:
        name = self.name
        labelnames = self.source._labelnames
        out: list[Any] = []
        append = out.append
        infos = self.infos or [None] * len(self.children)
        for key, child, info in zip(self.keys, self.children, infos, strict=True):
            series = list(zip(labelnames, key, strict=True))
            for suffix, extra, value, exemplar in self._kind.samples(self.source, child, self.created):
                if info is not None:
                    extra = info
                labels = dict(series + list(extra.items())) if extra or series else {}
                append(Sample(name + suffix, labels, value, None, exemplar))
        return out


_OVERRIDES = ("collect", "_samples", "_multi_samples", "_child_samples", "_get_metric")


def _plain(metric: Any) -> bool:
    """Tell whether no method this module mirrors is replaced on ``metric`` itself.

    Compares the bound methods' functions with the class's, which reads the instance's
    attributes without making CPython materialise its ``__dict__`` (``vars()`` would, and
    cost every child of the application's metrics a dict).
    """
    cls = type(metric)
    return all(getattr(getattr(metric, n, None), "__func__", 0) is getattr(cls, n, None) for n in _OVERRIDES)


_CHILD_SAMPLES = attrgetter("_child_samples.__func__")


def _any_child_overridden(children: list[Any]) -> bool:
    """Tell whether a child replaces its samples (``Gauge.set_function``); in C, as :func:`_plain`."""
    if not children:
        return False
    try:
        functions = list(map(_CHILD_SAMPLES, children))
    except AttributeError:  # a replacement that is no bound method
        return True
    return functions.count(getattr(type(children[0]), "_child_samples", None)) != len(children)


def read_metric(collector: Any) -> DirectFamily | None:
    """Snapshot a standard prometheus_client metric, or return ``None`` if it must be collected."""
    kind = KINDS.get(type(collector))
    if kind is None or not _plain(collector):
        return None
    if collector._is_parent():
        with collector._lock:
            snapshot = collector._metrics.copy()
        keys = list(snapshot)
        children = list(snapshot.values())
        if _any_child_overridden(children):
            return None
    else:
        keys, children = [()], [collector]  # _plain(collector) covered its _child_samples
    if children and not kind.single_process(children[0]):
        return None
    return DirectFamily(collector, kind, keys, children)

