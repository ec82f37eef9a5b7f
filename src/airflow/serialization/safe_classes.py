#
# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""
The classes a serialized form may name to be built on deserialization.

Serialized exceptions, triggers and params carry the import path of their class, and deserializing
them calls that class with arguments from the same payload. The internal API deserializes what its
callers send, so a path such as ``os.system`` would run a command there; only subclasses of the
expected base class are built. The class's module is checked before anything is imported: importing a
module runs its code, and the DAGs, plugins and config folders are on ``sys.path``.
"""

from __future__ import annotations

import sys

from airflow.exceptions import SerializationError
from airflow.triggers.base import BaseTrigger
from airflow.utils.module_loading import import_string


def import_subclass(path: str, base: type) -> type:
    """Import the class at ``path``; refuse anything that is not a subclass of ``base``."""
    module = path.rpartition(".")[0] if isinstance(path, str) else ""
    if not _may_import(module):
        raise SerializationError(
            f"{path} is not a {base.__name__}: {module} is not a module that Airflow has imported or ships"
        )
    imported = import_string(path)
    if not (isinstance(imported, type) and issubclass(imported, base)):
        raise SerializationError(
            f"{path} is not a {base.__name__}; a serialized {base.__name__} cannot name it"
        )
    return imported


def _may_import(module: str) -> bool:
    """Whether the module of a serialized class may be imported: it is already, or is part of Airflow."""
    if not module or not all(part.isidentifier() for part in module.split(".")):
        return False
    # Airflow's own modules and its providers' (airflow.providers) come from the installed distribution
    return module in sys.modules or module.partition(".")[0] == "airflow"


class TriggerReference(BaseTrigger):
    """A serialized trigger kept by name: it serializes as it came, and never runs here."""

    def __init__(self, classpath: str, kwargs: dict):
        super().__init__()
        self.classpath = classpath
        self.kwargs = kwargs

    def serialize(self) -> tuple[str, dict]:
        return self.classpath, self.kwargs

    async def run(self):
        raise RuntimeError(f"{self.classpath} is kept by name and runs only in its team's triggerer")
        yield  # an async generator, as BaseTrigger.run is


def trigger_or_reference(path: str, kwargs: dict) -> BaseTrigger:
    """
    Build the trigger of a serialized trigger, or keep it by name when this process may not build it.

    A team defers its tasks through its internal API, which stores the trigger for the team's triggerer
    and never runs it: it needs the class's path and arguments, not the class. A trigger class of the
    team's own (in its DAG folder, or in a library only its environment has) must not be imported by a
    shared process, and often cannot be; a path that is not a trigger class is not built either. Such a
    trigger comes back as a ``TriggerReference`` with the same path and arguments, which is all the
    trigger row keeps.
    """
    try:
        return import_subclass(path, BaseTrigger)(**kwargs)
    except (SerializationError, ImportError):
        return TriggerReference(path, kwargs)
