"""Name → class registries: adding a method, identity loss or metric is one decorated class."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownName(LookupError):
    """A name that is not registered; the message lists the registered ones and the closest match."""


def closest(name: str, known) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {match[0]!r}?" if match else ""


class Registry(Generic[T]):
    """A named collection of classes, filled by the ``@registry.register("name")`` decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not cls and _qualname(existing) != _qualname(cls):
                raise ValueError(f"{self.kind} {name!r} is already registered by {_qualname(existing)}")
            self._entries[name] = cls
            setattr(cls, "registry_name", name)
            return cls

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownName(f"unknown {self.kind} {name!r}; registered: {known}.{closest(name, self._entries)}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
