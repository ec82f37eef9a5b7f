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
Lossless re-serialization of deserialized operators.

A deserialized operator (``SerializedBaseOperator``) lists only BaseOperator's serialized fields, so
serializing it again dropped the fields its class had added (``ExternalTaskMarker.recursion_depth``).
That is what the internal API does with every DAG an isolated dag-processor sends it: the DAG arrives
deserialized and is written again, so the stored DAG lost them (clearing through an ExternalTaskMarker
failed with "'SerializedBaseOperator' object has no attribute 'recursion_depth'").

The deserializer keeps the encoded fields that the operator does not list, as they were encoded (before
it adds defaults of its own); the serializer writes them back where it wrote nothing of its own.
"""

from __future__ import annotations

from typing import Any

_UNLISTED = "_serialized_fields_not_listed"


def remember_unlisted_fields(op: Any, encoded_op: dict[str, Any]) -> None:
    # Template fields are written again from the operator's attributes; only the rest is kept (a few
    # short values per operator, in every process that deserializes DAGs).
    listed = op.get_serialized_fields() | set(encoded_op.get("template_fields", ()))
    unlisted = {key: value for key, value in encoded_op.items() if key not in listed}
    try:
        setattr(op, _UNLISTED, unlisted)
    except AttributeError:  # a MappedOperator (slotted): its class lists all it has
        pass


def restore_unlisted_fields(op: Any, serialized_op: dict[str, Any]) -> None:
    for key, value in getattr(op, _UNLISTED, {}).items():
        serialized_op.setdefault(key, value)
