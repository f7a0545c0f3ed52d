"""Discovery of registered methods: SMS, every module under ``baselines/``, and user plugin folders.

A new method is one file: put it in ``baselines/`` (or in a folder named by ``--plugins DIR`` or the
``SMS_PLUGINS`` environment variable, ``os.pathsep``-separated) and it registers itself on import.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path

_loaded_files: set[Path] = set()


def load_methods(extra_dirs: list[str | Path] | None = None) -> None:
    importlib.import_module("sms.style_matching")
    import baselines

    for module in pkgutil.iter_modules(baselines.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"baselines.{module.name}")
    env_dirs = [d for d in os.environ.get("SMS_PLUGINS", "").split(os.pathsep) if d]
    for folder in [*(extra_dirs or []), *env_dirs]:
        load_plugin_folder(Path(folder))


def load_plugin_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise FileNotFoundError(f"plugin folder {str(folder)!r} does not exist")
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
