"""Clarifai's v2 methods as its protos define them (clarifai-grpc's generated ``service_pb2``):
each method's name, its request and response messages, and its HTTP rules (``google.api.http``),
from which a REST path not served here is named as the method it is.

Read once, when first needed (the descriptors take a moment to load).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Method:
    name: str
    request: Any  # the generated message classes
    response: Any
    streaming: bool
    rules: tuple[tuple[str, re.Pattern[str], int], ...]  # (HTTP verb, path, literal length)


def _pattern(template: str) -> tuple[re.Pattern[str], int]:
    """``/v2/inputs/{input_id}`` as a regex; the literal length ranks overlapping rules."""
    parts, literal = [], 0
    for piece in re.split(r"(\{[^}]*\})", template):
        if piece.startswith("{"):
            parts.append(".+" if piece.endswith("=**}") else "[^/]+")
        else:
            parts.append(re.escape(piece))
            literal += len(piece)
    return re.compile("^" + "".join(parts) + "/?$"), literal


def _rules(options: Any) -> list[tuple[str, re.Pattern[str], int]]:
    from google.api import annotations_pb2

    found = []
    for rule in [options.Extensions[annotations_pb2.http],
                 *options.Extensions[annotations_pb2.http].additional_bindings]:
        for verb in VERBS:
            template = getattr(rule, verb)
            if template:
                found.append((verb.upper(), *_pattern(template)))
    return found


@cache
def methods() -> dict[str, Method]:
    """Every method of ``clarifai.api.V2``, by name."""
    from clarifai_grpc.grpc.api import service_pb2
    from google.protobuf import message_factory

    service = service_pb2.DESCRIPTOR.services_by_name["V2"]
    return {m.name: Method(m.name, message_factory.GetMessageClass(m.input_type),
                           message_factory.GetMessageClass(m.output_type),
                           m.client_streaming or m.server_streaming,
                           tuple(_rules(m.GetOptions())))
            for m in service.methods}


def method_for(verb: str, path: str) -> str | None:
    """The v2 method a REST request is (the most specific rule that matches), or None."""
    best: tuple[int, str] | None = None
    for method in methods().values():
        for rule_verb, pattern, literal in method.rules:
            if rule_verb == verb and pattern.match(path) and (best is None or literal > best[0]):
                best = (literal, method.name)
    return best[1] if best else None
