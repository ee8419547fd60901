"""Start and stop the gRPC server: the same process, state and limits as the HTTP side.

Messages up to ``max_body_bytes`` are received (the REST body limit; a larger one is refused
at once with RESOURCE_EXHAUSTED naming both sizes); TLS with the HTTP side's certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from clarifai_grpc.grpc.api import service_pb2_grpc

from tsnegrid.service.api.grpc.servicer import V2Servicer
from tsnegrid.service.api.methods.call import Links
from tsnegrid.service.api.state import ServiceState
from tsnegrid.service.errors import ServerBusyError

THREADS = 16  # requests served at once; up to CONCURRENT more wait, further ones are refused
CONCURRENT = 64


def start(state: ServiceState, path_for: Callable[..., str]) -> grpc.Server:
    """Serve ``clarifai.api.V2`` on the configured address and gRPC port, now."""
    cfg = state.config
    server = grpc.server(
        ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="grpc"),
        maximum_concurrent_rpcs=CONCURRENT,
        options=[("grpc.max_receive_message_length", cfg.max_body_bytes),
                 ("grpc.max_send_message_length", 256 * 2**20),
                 ("grpc.so_reuseport", 0)])
    service_pb2_grpc.add_V2Servicer_to_server(
        V2Servicer(state, Links.under(cfg.http_base, path_for)), server)
    address = f"{cfg.host}:{cfg.grpc_port}"
    try:
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes())])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ServerBusyError(f"cannot serve gRPC on {address}: {exc} (--grpc-port 0: no "
                              f"gRPC)") from exc
    if not port:
        raise ServerBusyError(f"cannot serve gRPC on {address}: in use? (--grpc-port 0: no "
                              f"gRPC)")
    server.start()
    return server
