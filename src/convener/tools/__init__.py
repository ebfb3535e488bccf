"""Tools around the service, never run by ``convener run``: the test caller (``testcall``,
``callcheck``), ``doctor``, ``demo`` and the in-process ``stack`` (sandbox credentials, example
agents and the application in one process, for the demo, tests and benchmarks).

They use the service's public pieces; nothing in the service imports them."""
