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
Which files a DAG folder holds: the one containment rule of multi-team mode, in Python and in SQL.

A file is below a folder when its path starts with the folder and a separator, never as a plain string
prefix: a team's folder can be a string prefix of another team's (``/dags/sales``, ``/dags/sales_eu``).
"""

from __future__ import annotations

import os


def _prefix(folder: str) -> str:
    return folder.rstrip(os.sep) + os.sep


def below(path: str, folder: str) -> bool:
    """Whether ``path`` is inside ``folder`` (not the folder itself)."""
    return path.startswith(_prefix(folder))


def within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or inside it."""
    return path == folder or below(path, folder)


def sql_below(path_column, folder: str):
    """Return :func:`below` as a condition on ``path_column``; ``_`` and ``%`` in the folder match literally."""
    return path_column.startswith(_prefix(folder), autoescape=True)
