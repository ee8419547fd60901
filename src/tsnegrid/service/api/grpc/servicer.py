"""``clarifai.api.V2`` over gRPC: each served method parses its proto request into the schema
its REST route uses, calls the same ``methods`` function and writes the answer into the proto
response. As Clarifai does, the outcome travels in the response's ``status`` (10000 on success,
the proto's codes otherwise) with gRPC's own status OK; a method not served answers at once
with 10040 naming it (streaming ones with gRPC UNIMPLEMENTED), never UNAVAILABLE, which the
clients retry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from clarifai_grpc.grpc.api import service_pb2_grpc
from google.protobuf import json_format
from pydantic import BaseModel, ValidationError

from tsnegrid.errors import TsnegridError
from tsnegrid.service.api.errors import Code, describe, status, unexpected, validation_text
from tsnegrid.service.api.methods import apps, inputs, models
from tsnegrid.service.api.methods.auth import authenticate, check_app
from tsnegrid.service.api.methods.call import Answer, Call, Links
from tsnegrid.service.api.methods.pages import Page
from tsnegrid.service.api.model_schemas import PostModelOutputsRequest
from tsnegrid.service.api.rules import methods
from tsnegrid.service.api.schemas import DeleteInputsRequest, PostInputsRequest
from tsnegrid.service.api.state import ServiceState

log = logging.getLogger(__name__)

Adapter = Callable[[Call, Any, dict[str, Any]], Answer]
"""(call, the proto request, the same as JSON) -> the method's answer."""


def _page(call: Call, req: Any) -> Page:
    return Page.of(req.page, req.per_page, call.state.config.page_size_max)


def _app_id(req: Any) -> str | None:
    return req.user_app_id.app_id or None


def _parse(schema: type[BaseModel], body: dict[str, Any]) -> Any:
    return schema.model_validate(body)


# Methods that check the request's app themselves (a model read may name the public app).
OWN_APP_CHECK = {"ListModels", "GetModel", "GetModelType", "ListModelTypes", "PostModelOutputs",
                 "GetApp"}

SERVED: dict[str, Adapter] = {
    "GetApp": lambda c, r, _: apps.get_app(c, _app_id(r), r.user_app_id.user_id or None),
    "ListApps": lambda c, r, _: apps.list_apps(c, _page(c, r), r.user_app_id.user_id or None),
    "PostInputs": lambda c, _, b: inputs.post_inputs(c, _parse(PostInputsRequest, b)),
    "ListInputs": lambda c, r, _: inputs.list_inputs(c, _page(c, r), list(r.ids),
                                                     r.status.code or None),
    "GetInput": lambda c, r, _: inputs.get_input(c, r.input_id),
    "GetInputCount": lambda c, _r, _b: inputs.get_input_count(c),
    "DeleteInput": lambda c, r, _: inputs.delete_input(c, r.input_id),
    "DeleteInputs": lambda c, _, b: inputs.delete_inputs(c, _parse(DeleteInputsRequest, b)),
    "GetInputsAddJob": lambda c, r, _: inputs.get_inputs_add_job(c, r.id),
    "ListModels": lambda c, r, _: models.list_models(c, _page(c, r), _app_id(r)),
    "GetModel": lambda c, r, _: models.get_model(c, r.model_id, r.version_id or None,
                                                 _app_id(r)),
    "GetModelType": lambda c, r, _: models.get_model_type(c, r.model_type_id, _app_id(r)),
    "ListModelTypes": lambda c, r, _: models.list_model_types(c, _app_id(r)),
    "PostModelOutputs": lambda c, r, b: models.post_model_outputs(
        c, r.model_id, _parse(PostModelOutputsRequest, b), r.version_id or None),
}


def _authorization(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _peer(context: grpc.ServicerContext) -> str:
    """The client's address from ``ipv4:1.2.3.4:5678`` or ``ipv6:[::1]:5678``."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer


def _request_id(context: grpc.ServicerContext) -> str:
    """The client's ``x-clarifai-request-id-prefix`` (if any) and a new id."""
    prefix = next((v for k, v in context.invocation_metadata() or ()
                   if k == "x-clarifai-request-id-prefix" and isinstance(v, str)), "")
    return f"{prefix[:64]}-{uuid.uuid4().hex}" if prefix else uuid.uuid4().hex


class V2Servicer(service_pb2_grpc.V2Servicer):
    """The v2 service over one server's state; urls in answers point at its HTTP side."""

    def __init__(self, state: ServiceState, links: Links) -> None:
        self.state, self.links = state, links
        for method in methods().values():
            if method.name in SERVED:
                handler = self._served(method.name, SERVED[method.name], method.response)
            elif method.streaming:
                handler = self._unimplemented_stream(method.name)
            else:
                handler = self._unimplemented(method.name, method.response)
            setattr(self, method.name, handler)

    def _answer(self, name: str, adapter: Adapter, request: Any,
                context: grpc.ServicerContext) -> dict[str, Any]:
        try:
            body = json_format.MessageToDict(request, preserving_proto_field_name=True)
            with self.state.db.session() as session:
                caller = authenticate(session, _authorization(context),
                                      self.state.auth_failures, _peer(context))
                if name not in OWN_APP_CHECK:
                    check_app(caller, [_app_id(request)])
                return adapter(Call(self.state, session, caller, self.links), request, body)[0]
        except TsnegridError as exc:
            return {"status": status(*describe(exc)[1:])}
        except ValidationError as exc:
            return {"status": status(Code.CONN_BAD_REQUEST_FORMAT, validation_text(exc))}
        except Exception as exc:
            return {"status": status(*unexpected(exc)[1:])}

    def _served(self, name: str, adapter: Adapter, response: Any) -> Callable[..., Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            body = self._answer(name, adapter, request, context)
            body["status"]["req_id"] = _request_id(context)
            return json_format.ParseDict(body, response(), ignore_unknown_fields=True)

        return handle

    @staticmethod
    def _unimplemented(name: str, response: Any) -> Callable[..., Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            return json_format.ParseDict({"status": status(Code.NOT_IMPLEMENTED, _unserved(name))},
                                         response())

        return handle

    @staticmethod
    def _unimplemented_stream(name: str) -> Callable[..., Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, _unserved(name))

        return handle


def _unserved(name: str) -> str:
    from tsnegrid.service.api.paths import SERVED as WHAT

    return (f"{name} is part of Clarifai's v2 API but not implemented by this server (it "
            f"serves {WHAT}; see docs/service.md)")
