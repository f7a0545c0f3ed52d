"""Which methods and metrics exist: the suite's own, installed packages' entry points, and plugin folders.

A method is one file: put it in ``baselines/``, in a folder named by ``--plugins DIR`` (or the
``SMS_PLUGINS`` environment variable, ``os.pathsep``-separated), or in an installed package that declares
it under the entry-point group ``sms_suite.methods`` (metrics: ``sms_suite.metrics``). It registers
itself on import.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path

from workflow.errors import UserError

METHOD_GROUP = "sms_suite.methods"
METRIC_GROUP = "sms_suite.metrics"
_loaded_files: set[Path] = set()


def load_methods(extra_dirs: list[str | Path] | None = None):
    """Import every method; returns the filled registry (``sms.method.methods``)."""
    from sms.method import methods

    importlib.import_module("sms.style_matching")
    import baselines

    for module in pkgutil.iter_modules(baselines.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"baselines.{module.name}")
    _load_entry_points(METHOD_GROUP)
    env_dirs = [d for d in os.environ.get("SMS_PLUGINS", "").split(os.pathsep) if d]
    for folder in [*(extra_dirs or []), *env_dirs]:
        load_plugin_folder(Path(folder))
    return methods


def load_metrics():
    """Import every metric; returns the filled registry (``eval.registry.METRICS``)."""
    from eval.registry import load_all

    registry = load_all()
    _load_entry_points(METRIC_GROUP)
    return registry


def _load_entry_points(group: str) -> None:
    for entry in entry_points(group=group):
        entry.load()


def load_plugin_folder(folder: Path) -> None:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"plugin folder {str(folder)!r} does not exist; pass an existing folder of method files "
                        "to --plugins (or fix SMS_PLUGINS).")
    for file in sorted(folder.glob("*.py")):
        file = file.resolve()
        if file in _loaded_files or file.name.startswith("_"):
            continue
        name = f"sms_plugin_{file.stem}_{abs(hash(str(file))) % 10**8}"
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _loaded_files.add(file)
