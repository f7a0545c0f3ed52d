"""Orchestration on top of the library: the params schema and ``sms check``, the DVC stage entry points,
method/metric discovery and the one ``sms`` command line. Nothing below this package imports it."""
