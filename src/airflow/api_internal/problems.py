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
What the internal API answers to requests that its callers get wrong: a 4xx, never a 500.

A caller sends any JSON body and, in it, any arguments for a method. Two things are checked before the
body is parsed: its size (``MAX_BODY_BYTES``, 413) and how deeply it nests (``MAX_BODY_DEPTH``, 400), as
parsing and deserializing recurse once per level. What a method raises because of its arguments is
answered by the exception's class (``CLIENT_ERRORS``): a row they name that does not exist is a 404,
arguments of a type or value the method or the database cannot take (a NUL byte in a string, a number
out of range, a list where the column holds text, a list as a primary key) a 400, a row they would write
that conflicts with an existing one a 409. Every other exception stays a 500: a failure of the server.
"""

from __future__ import annotations

import json
import logging
import re
from itertools import accumulate

from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    IntegrityError,
    InvalidRequestError,
    NoResultFound,
    PendingRollbackError,
    ProgrammingError,
    StatementError,
)

log = logging.getLogger(__name__)

# A request body larger than this is refused before it is read (serialized DAGs of a large file fit).
MAX_BODY_BYTES = 64 * 1024 * 1024
# JSON nesting: the serialization doubles the nesting of the values it carries (a value and its type).
MAX_BODY_DEPTH = 256

# The status of what a method raised because of its caller's arguments, by exception class (the first of
# its class and bases listed here).
CLIENT_ERRORS: dict[type[BaseException], int] = {
    NoResultFound: 404,  # a row the arguments name does not exist (e.g. another DAG's run id)
    IntegrityError: 409,  # a row the arguments would write conflicts with one that exists (a job's id)
    DataError: 400,  # a value the database cannot store or compare (out of range, malformed)
    ProgrammingError: 400,  # a value of a type the driver cannot send or the column cannot compare with
    TypeError: 400,  # an argument of a type the method cannot use
    ValueError: 400,  # an argument of a value the method or its database driver refuses (a NUL byte)
    OverflowError: 400,  # a number out of the range the method can use (a timedelta of 10**16 seconds)
    RecursionError: 400,  # arguments nested too deeply to handle
    # what the ORM cannot do with the arguments (a list as a primary key, several rows where one is expected)
    InvalidRequestError: 400,
    ArgumentError: 400,  # a statement the arguments cannot build (True as the list of an IN)
    PendingRollbackError: 500,  # (an InvalidRequestError) the session's state, not the arguments
}

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def status_of(error: BaseException) -> int:
    """Return the HTTP status for an exception raised while serving a call: 4xx if the caller caused it."""
    if type(error) is StatementError and error.orig is not None:
        error = error.orig  # what the database layer wrapped: the driver's or a type's refusal of a value
    for cls in type(error).__mro__:
        if cls in CLIENT_ERRORS:
            return CLIENT_ERRORS[cls]
    return 500


def body_depth(body: bytes) -> int:
    """Return how deeply a JSON document nests its arrays and objects (without parsing it)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[char] for char in brackets), default=0)


def _problem(status: int, title: str, detail: str):
    from flask import Response

    return Response(
        json.dumps({"status": status, "title": title, "detail": detail}),
        status=status,
        mimetype="application/problem+json",
    )


def check_body():
    """Refuse a body nested too deeply before anything parses it (a ``before_request`` hook)."""
    from flask import request

    if request.method != "POST":
        return None
    depth = body_depth(request.get_data(cache=True))  # more than MAX_CONTENT_LENGTH: 413 (werkzeug)
    if depth > MAX_BODY_DEPTH:
        log.warning("Refused an internal API request whose body is nested %d levels deep", depth)
        return _problem(
            400, "Bad Request", f"The request body is nested deeper than {MAX_BODY_DEPTH} levels."
        )
    return None


def handle_client_error(error: Exception):
    """Answer an exception of ``CLIENT_ERRORS`` raised outside a method (e.g. by a check of its arguments)."""
    status = status_of(error)
    log.warning(
        "Internal API request failed with %s (answered %d)", type(error).__name__, status, exc_info=True
    )
    if status >= 500:
        raise error
    detail = f"{type(error).__name__}: {str(error)[:500]}"
    return _problem(status, {404: "Not Found", 409: "Conflict"}.get(status, "Bad Request"), detail)


def register(app) -> None:
    """Limit the size and depth of request bodies and answer the callers' errors with a 4xx."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.before_request(check_body)
    for cls in (*CLIENT_ERRORS, StatementError):
        app.register_error_handler(cls, handle_client_error)
