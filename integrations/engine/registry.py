"""Finds integration folders and loads their definitions and models.

An integration is a folder holding `definition.yaml` and optionally `models.py` (and any
mapping code). Built-in ones live in this package; more can be added without touching the
engine by listing extra folders in SCREENSYNC_INTEGRATIONS_PATH (os.pathsep-separated).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ValidationError

from integrations.engine.coercion import policy_problems
from integrations.engine.definition import IntegrationDefinition, SyncConfig, merge_extends

BUILTIN_DIR = Path(__file__).resolve().parent.parent
PATH_ENV = "SCREENSYNC_INTEGRATIONS_PATH"


class DefinitionError(ValueError):
    """A definition that cannot be loaded; the message names the file and the field."""


@dataclass(frozen=True)
class Integration:
    """A loaded definition plus the folder its models and mapping code come from."""

    definition: IntegrationDefinition
    folder: Path  # where `models.py` is read from (the base folder for an `extends` child)
    _modules: dict[str, ModuleType] = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.definition.name

    def resolve(self, ref: str) -> Any:
        """'Name' -> attribute of this integration's models.py; 'pkg.mod:Name' -> that attribute."""
        if ":" in ref:
            module_name, attr = ref.split(":", 1)
            module = self._load_module(module_name)
        else:
            module, attr = self._load_module("models"), ref
        try:
            return getattr(module, attr)
        except AttributeError:
            raise DefinitionError(f"{self.name}: {ref!r} not found in {module.__name__}") from None

    def model(self, ref: str) -> type[BaseModel]:
        obj = self.resolve(ref)
        if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
            raise DefinitionError(f"{self.name}: {ref!r} is not a pydantic model")
        return obj

    def _load_module(self, name: str) -> ModuleType:
        if name in self._modules:
            return self._modules[name]
        if "." in name:  # a fully qualified, importable module
            module = importlib.import_module(name)
        elif self.folder.parent == BUILTIN_DIR:
            module = importlib.import_module(f"integrations.{self.folder.name}.{name}")
        else:  # an external folder: load by path under a private name
            path = self.folder / f"{name}.py"
            if not path.exists():
                raise DefinitionError(f"{self.name}: {path} does not exist")
            mod_name = f"_screensync_ext_{self.folder.name}_{name}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        self._modules[name] = module
        return module

    def check_webhook_routes(self) -> None:
        """Object events must name this integration's syncs (checked where `webhooks:` is declared:
        an `extends` child that drops a sync simply receives no records for it)."""
        d = self.definition
        for route in d.webhooks.objects if d.webhooks else []:
            if route.sync not in {s.name for s in d.syncs}:
                raise DefinitionError(f"{self.name}: webhooks.objects names sync {route.sync!r}; it has "
                                      f"{[s.name for s in d.syncs]}")

    def check(self) -> None:
        """Resolve every model and hook now, so a bad reference fails at load time."""
        d = self.definition
        for s in d.syncs:
            for ref in (s.model, *(e.model for e in s.embedded)):
                problems = policy_problems(self.model(ref))
                if problems:  # a record model outside the one rule would coerce quietly
                    raise DefinitionError(f"{self.name}: sync {s.name!r}: " + "; ".join(problems))
            if s.transform:
                self.resolve(s.transform)
            fields = self.model(s.model).model_fields
            for ref in s.references:
                if ref.field not in fields:
                    raise DefinitionError(f"{self.name}: sync {s.name!r}: reference {ref.field!r} is not a field of "
                                          f"{s.model}")
            if s.sweep is not None:
                frequency_seconds(s.sweep, f"sync {s.name!r} sweep")
        for a in d.actions:
            self.model(a.input)
            self.model(a.output)
            if a.handler:
                self.resolve(a.handler)
        if d.webhooks and d.webhooks.hook:
            self.resolve(d.webhooks.hook)
        from integrations.engine.views import check_view_parts  # views.py reads the registry

        try:
            check_view_parts(self)
        except ValueError as exc:
            raise DefinitionError(str(exc)) from None



def _search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "name" not in data:
        raise DefinitionError(f"{path}: a definition must be a mapping with a 'name'")
    return data


def _discover() -> dict[str, tuple[Path, dict[str, Any]]]:
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for base in _search_dirs():
        if not base.is_dir():
            continue
        for path in sorted(base.glob("*/definition.yaml")):
            raw = _read_yaml(path)
            found.setdefault(raw["name"], (path.parent, raw))
    return found


@cache
def _load_all(search_key: str) -> dict[str, Integration]:
    raws = _discover()
    loaded: dict[str, Integration] = {}

    def load(name: str, chain: tuple[str, ...] = ()) -> Integration:
        if name in loaded:
            return loaded[name]
        if name in chain:
            raise DefinitionError(f"'extends' cycle: {' -> '.join((*chain, name))}")
        if name not in raws:
            raise DefinitionError(f"unknown integration {name!r}; known: {sorted(raws)}")
        folder, raw = raws[name]
        model_folder = folder
        if raw.get("extends"):
            parent = load(raw["extends"], (*chain, name))
            raw = merge_extends(parent.definition.model_dump(mode="json", exclude_none=False), raw)
            model_folder = parent.folder  # models and mapping code are reused by reference
        try:
            definition = IntegrationDefinition.model_validate(raw)
        except ValidationError as exc:
            raise DefinitionError(f"{folder / 'definition.yaml'}: {exc}") from exc
        integ = Integration(definition, model_folder)
        integ.check()
        if "webhooks" in raws[name][1]:
            integ.check_webhook_routes()
        loaded[name] = integ
        return integ

    for name in raws:
        load(name)
    return loaded


def all_integrations() -> dict[str, Integration]:
    return _load_all(os.environ.get(PATH_ENV, ""))


def get_integration(name: str) -> Integration:
    integrations = all_integrations()
    if name not in integrations:
        raise DefinitionError(f"unknown integration {name!r}; known: {sorted(integrations)}")
    return integrations[name]


def reload() -> None:
    """Forget loaded definitions (tests that add integration folders call this)."""
    _load_all.cache_clear()


def provider_urls(definition: IntegrationDefinition, *, environment: str | None = None,
                  base_url: str | None = None) -> dict[str, str]:
    """The environment's named URLs, with scheme/host/port replaced by `base_url` when given."""
    env = environment or definition.provider.default_environment
    if env not in definition.provider.environments:
        raise DefinitionError(
            f"{definition.name}: unknown environment {env!r}; known: {sorted(definition.provider.environments)}"
        )
    urls = dict(definition.provider.environments[env])
    if base_url:
        override = urlsplit(base_url)
        if not override.scheme or not override.netloc:
            raise DefinitionError(f"base URL override {base_url!r} must look like scheme://host[:port]")
        urls = {
            k: urlunsplit((override.scheme, override.netloc, *urlsplit(v)[2:])) for k, v in urls.items()
        }
    for name, url in urls.items():
        check_transport_security(url, what=f"{definition.name} {name} URL")
    return urls


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def check_transport_security(url: str, *, what: str = "URL") -> None:
    """Credentials travel only over https, except to a sandbox on this machine's loopback."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and (host in LOOPBACK_HOSTS or host.startswith("127.")):
        return
    raise DefinitionError(f"{what} {url!r} must use https (plain http is allowed only for loopback sandbox hosts)")


def sync_frequency_seconds(sync: SyncConfig) -> int | None:
    """'every 15m' -> 900; cron expressions return None (the scheduler takes them as cron)."""
    return frequency_seconds(sync.frequency, f"sync {sync.name!r}")


def frequency_seconds(text: str, what: str) -> int | None:
    """'every 15m' -> 900; a cron expression -> None; anything else names `what`."""
    text = text.strip()
    if not text.startswith("every "):
        return None
    amount = text.removeprefix("every ").strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return int(amount[:-1]) * units[amount[-1]]
    except (KeyError, ValueError):
        raise DefinitionError(f"{what}: bad frequency {text!r}") from None
