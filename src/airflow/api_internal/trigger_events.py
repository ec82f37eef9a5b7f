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
Trigger events across the internal API.

An isolated triggerer hands each event its trigger fired to the internal API (``Trigger.submit_event``),
which runs the event's ``handle_submit`` against the database. Events are not a type the RPC
serialization knew, so they arrived as their ``repr``; they now travel as their class, payload and
(for the events that end a task) XComs. Only TriggerEvent classes are accepted on the way back.
"""

from __future__ import annotations

from typing import Any

from airflow.triggers.base import BaseTaskEndEvent, TriggerEvent
from airflow.utils.module_loading import import_string, qualname


def to_fields(event: TriggerEvent) -> dict[str, Any]:
    return {"class": qualname(event), "payload": event.payload, "xcoms": getattr(event, "xcoms", None)}


def from_fields(fields: dict[str, Any]) -> TriggerEvent:
    event_class = import_string(fields["class"])
    if not (isinstance(event_class, type) and issubclass(event_class, TriggerEvent)):
        raise TypeError(f"{fields['class']} is not a TriggerEvent")
    if issubclass(event_class, BaseTaskEndEvent):
        return event_class(xcoms=fields["xcoms"])
    return event_class(fields["payload"])
