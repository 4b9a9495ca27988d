"""The embedded milvus-lite server process: milvus-lite's gRPC service on a Unix socket, never on a TCP port.

milvus-lite (3.2) has no authentication: its server accepts every call from whoever can connect,
and its own launcher binds a TCP port, which every local user can reach. So the gallery starts
milvus-lite's service itself, bound only to `unix:<socket>`, a socket inside the data directory,
which `EmbeddedMilvus` keeps at mode 0700: only the owner of the data (and root) can connect,
the same people who could read the data files anyway. SIGINT stops it cleanly (in-flight calls
drained, the data closed and its lock released), as milvus-lite's own launcher does.

Run as `python -m cluster.gallery.lite_server --data-dir DIR --socket PATH [--max-workers N]`.
"""

import argparse
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""What milvus-lite's own server allows (as a Milvus standalone does)."""
DRAIN_S = 5.0


def serve(data_dir: str, socket_path: str, max_workers: int) -> None:
    """Serve the data directory on the Unix socket until SIGINT."""
    db = MilvusLite(data_dir)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace=DRAIN_S).wait()
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--max-workers", type=int, default=1)
    args = parser.parse_args()
    serve(args.data_dir, args.socket, args.max_workers)


if __name__ == "__main__":
    main()
