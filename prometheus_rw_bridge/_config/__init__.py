"""Configuration: the option table, settings objects and their resolution, parsers, environment names.

Explicit argument, then ``PROMETHEUS_REMOTE_WRITE_*`` environment variable, then default.
Feeds every layer above; knows nothing of threads or HTTP.

* :mod:`.table`: **the option table**, each option declared once as a field of ``Settings``
  (bridge-wide) or ``EndpointSettings`` (per endpoint), with its docstring;
* :mod:`.option`: how an option is declared (:func:`~.option.option`) and the kinds of value;
* :mod:`.settings`: :func:`~.settings.resolve_settings`, and what the package imports;
* :mod:`.unknown`: the warning about a variable that is no option;
* :mod:`.env`: the ``ENV_*`` constants; :mod:`.reference` writes them, the typed options and
  the reference's tables from the table;
* :mod:`.parse`: the parsers of single values; :mod:`.pairs`: of ``name=value,...`` (labels,
  headers, parameters) and header names; :mod:`.relabel_file`: relabel rules from a YAML or JSON file.
"""
