#!/usr/bin/env python3
"""A gRPC peer (h2c) and a gRPC client for the end-to-end tests, with
grpcio and no generated code: the methods take and return raw bytes.

    grpc_peer.py serve --port PORT [--cert CERT.pem --key KEY.pem]
        over h2c, or over TLS (ALPN h2) with the certificate given:
        /test.Echo/Say          unary: answers `echo: ` + the request
        /test.Echo/Count        server streaming: answers `1`, `2`, ... up
                                to the number in the request
    grpc_peer.py call --target HOST:PORT
        calls both through HOST:PORT and prints one line per answer
"""

import argparse
import sys
from concurrent import futures

import grpc


def raw(data):
    return data


def say(request, context):
    return b"echo: " + request


def count(request, context):
    for n in range(1, int(request) + 1):
        yield str(n).encode()


def serve(port, cert, key):
    handler = grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Say": grpc.unary_unary_rpc_method_handler(
                say, request_deserializer=raw, response_serializer=raw
            ),
            "Count": grpc.unary_stream_rpc_method_handler(
                count, request_deserializer=raw, response_serializer=raw
            ),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    if cert:
        with open(cert, "rb") as c, open(key, "rb") as k:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        server.add_secure_port(f"127.0.0.1:{port}", credentials)
    else:
        server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def call(target):
    with grpc.insecure_channel(target) as channel:
        unary = channel.unary_unary(
            "/test.Echo/Say", request_serializer=raw, response_deserializer=raw
        )
        print(unary(b"hello", timeout=5).decode())
        stream = channel.unary_stream(
            "/test.Echo/Count", request_serializer=raw, response_deserializer=raw
        )
        for answer in stream(b"3", timeout=5):
            print(answer.decode())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve", "call"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--target")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.port, args.cert, args.key)
    else:
        call(args.target)


if __name__ == "__main__":
    sys.exit(main())
