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
"""The end of a forked child that runs Airflow code: as the interpreter would end, without its exit handlers."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable, NoReturn

log = logging.getLogger(__name__)


def run_and_exit(call: Callable[[], object], failure: str) -> NoReturn:
    """
    Run ``call`` in a forked child, then end the child with the exit code the interpreter would give.

    ``SystemExit``'s code, or its message on stderr and code 1; any other exception logged as ``failure``,
    code 1. ``os._exit``: the parent's ``atexit`` handlers (its database pool, its log handlers) are not
    the child's to run.
    """
    code = 1
    try:
        call()
        code = 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
    except BaseException:
        log.exception("%s", failure)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
