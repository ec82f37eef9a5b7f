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
Which local task log files may be read or served: only regular files inside the log folder.

A task can write into its own log folder. Had it put a symbolic link there (or replaced a folder of the
log tree by one), reading "its log" would read whatever the link names: ``airflow.cfg``, the
webserver's keys, another task's files. So a log file is read (by the webserver's log reader) or served
(by the log servers of workers and triggerers) only if it is not a symbolic link and its real path,
every link of its folders resolved, is inside the real log folder.
"""

from __future__ import annotations

import os


def refusal(path: str | os.PathLike, base_log_folder: str | os.PathLike | None) -> str | None:
    """
    Why the log file ``path`` may not be read or served, or None if it may.

    The reason names neither the link's target nor where it leads, since it is shown to the UI's user.
    Without ``base_log_folder`` only symbolic links are refused.
    """
    if os.path.islink(path):
        return "it is a symbolic link"
    if base_log_folder is None:
        return None
    real = os.path.realpath(path)
    base = os.path.realpath(base_log_folder)
    if real != base and not real.startswith(base.rstrip(os.sep) + os.sep):
        return "it is outside the log folder (a folder of its path is a symbolic link, or the path leaves it)"
    return None
