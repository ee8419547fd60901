"""Drives a tsnegrid server with Clarifai's current client ``clarifai-grpc==12.6.0``, unchanged,
over its JSON channel (REST) or its default insecure gRPC channel (``"channel": "grpc"``):
every call once without ``user_app_id`` and once with it.

Run with that client's own Python (``.venv-clarifai-grpc``, made by
.ci/install-clarifai-clients); reads a JSON spec on stdin, writes what each call returned as
JSON on stdout. The checks are in tests/test_service_clarifai_clients.py.
"""


from _run import run
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct


def status(resp):
    return {"code": resp.status.code, "description": resp.status.description}


def main(spec):
    if spec.get("channel") == "grpc":
        channel = ClarifaiChannel.get_insecure_grpc_channel(base=spec["grpc_host"],
                                                            port=spec["grpc_port"])
    else:
        channel = ClarifaiChannel.get_json_channel(base_url=spec["base_url"])
    stub = service_pb2_grpc.V2Stub(channel)
    auth = (("authorization", "Key " + spec["key"]),)
    files = spec["files"]
    out = {}
    for label, app in (("plain", None), ("user_app_id", resources_pb2.UserAppIDSet(
            user_id="me", app_id=spec["app_id"]))):
        kw = {"user_app_id": app} if app is not None else {}
        res = {}
        meta = Struct()
        meta.update({"via": label})
        inputs = [resources_pb2.Input(id=f"{label}-{i}", data=resources_pb2.Data(
            image=resources_pb2.Image(base64=open(f, "rb").read()), metadata=meta))
            for i, f in enumerate(files[:3])]
        inputs.append(resources_pb2.Input(id=f"{label}-url", data=resources_pb2.Data(
            image=resources_pb2.Image(url=spec["url"]))))
        r = stub.PostInputs(service_pb2.PostInputsRequest(inputs=inputs, **kw), metadata=auth)
        res["post"] = {**status(r), "inputs": [(i.id, i.status.code) for i in r.inputs]}
        r = stub.ListInputs(service_pb2.ListInputsRequest(page=1, per_page=100, **kw),
                            metadata=auth)
        res["list"] = {**status(r), "ids": [i.id for i in r.inputs],
                       "metadata": [json_format.MessageToDict(i.data.metadata)
                                    for i in r.inputs]}
        r = stub.ListInputs(service_pb2.ListInputsRequest(page=2, per_page=2, **kw),
                            metadata=auth)
        res["page2"] = [i.id for i in r.inputs]
        r = stub.GetInput(service_pb2.GetInputRequest(input_id=f"{label}-0", **kw),
                          metadata=auth)
        res["get"] = {**status(r), "id": r.input.id, "url": r.input.data.image.url,
                      "input_code": r.input.status.code}
        r = stub.GetInputCount(service_pb2.GetInputCountRequest(**kw), metadata=auth)
        res["count"] = {**status(r), "processed": r.counts.processed,
                        "to_process": r.counts.to_process}
        r = stub.ListModels(service_pb2.ListModelsRequest(**kw), metadata=auth)
        res["models"] = {**status(r), "ids": [m.id for m in r.models],
                         "types": [m.model_type_id for m in r.models]}
        r = stub.GetModel(service_pb2.GetModelRequest(model_id="lite0", **kw), metadata=auth)
        res["model"] = {**status(r), "id": r.model.id, "version": r.model.model_version.id}
        r = stub.PostModelOutputs(service_pb2.PostModelOutputsRequest(
            model_id="lite0", inputs=[
                resources_pb2.Input(data=resources_pb2.Data(image=resources_pb2.Image(
                    base64=open(files[0], "rb").read()))),
                resources_pb2.Input(data=resources_pb2.Data(image=resources_pb2.Image(
                    url=spec["url"]))),
                resources_pb2.Input(id=f"{label}-1")], **kw), metadata=auth)
        res["outputs"] = {**status(r), "outputs": [
            {"code": o.status.code, "vector": list(o.data.embeddings[0].vector),
             "num_dimensions": o.data.embeddings[0].num_dimensions} for o in r.outputs]}
        r = stub.PostModelOutputs(service_pb2.PostModelOutputsRequest(
            model_id="lite0-concepts", inputs=[resources_pb2.Input(id=f"{label}-1")],
            model=resources_pb2.Model(output_info=resources_pb2.OutputInfo(
                output_config=resources_pb2.OutputConfig(max_concepts=3))), **kw),
            metadata=auth)
        res["concepts"] = {**status(r), "concepts": [
            [c.id, c.name, c.value] for c in r.outputs[0].data.concepts]}
        r = stub.PostModelOutputs(service_pb2.PostModelOutputsRequest(
            model_id="no-such-model", inputs=inputs[:1], **kw), metadata=auth)
        res["no_model"] = status(r)
        r = stub.DeleteInput(service_pb2.DeleteInputRequest(input_id=f"{label}-url", **kw),
                             metadata=auth)
        res["delete_one"] = status(r)
        r = stub.DeleteInputs(service_pb2.DeleteInputsRequest(
            ids=[f"{label}-1", f"{label}-2"], **kw), metadata=auth)
        res["delete_many"] = status(r)
        r = stub.GetInput(service_pb2.GetInputRequest(input_id=f"{label}-1", **kw),
                          metadata=auth)
        res["get_deleted"] = status(r)
        out[label] = res

    other = resources_pb2.UserAppIDSet(user_id="me", app_id=spec["other_app_id"])
    missing = resources_pb2.UserAppIDSet(user_id="me", app_id="no-such-app")
    refused = {}
    for label, app in (("other_app", other), ("missing_app", missing)):
        refused[label] = {
            "list": status(stub.ListInputs(service_pb2.ListInputsRequest(user_app_id=app),
                                           metadata=auth)),
            "count": status(stub.GetInputCount(service_pb2.GetInputCountRequest(
                user_app_id=app), metadata=auth)),
            "models": status(stub.ListModels(service_pb2.ListModelsRequest(user_app_id=app),
                                             metadata=auth))}
    for label, key in (("wrong_key", "0" * 40), ("revoked_key", spec["revoked_key"])):
        refused[label] = status(stub.ListInputs(service_pb2.ListInputsRequest(),
                                                metadata=(("authorization", "Key " + key),)))
    refused["unimplemented"] = status(stub.ListConcepts(service_pb2.ListConceptsRequest(),
                                                        metadata=auth))
    out["refused"] = refused
    return out


if __name__ == "__main__":
    run(main)
