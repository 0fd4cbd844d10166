"""A gRPC server and client (the grpcio package) for the end-to-end tests.

Messages are raw bytes (no protobuf schema): the service is
`upshift.test.Echo` with one method of each kind.

    grpc_peer.py serve NAME FAIL_EVERY
        Serves on a free port of 127.0.0.1 (h2c) and prints it. Replies
        start with NAME; every FAIL_EVERY-th unary call (0: none) fails
        with UNAVAILABLE. Every call's trailers carry `x-served-by: NAME`.

    grpc_peer.py call ADDRESS SCENARIO [ARG]
        Calls the server at ADDRESS (host:port, h2c) and prints a JSON
        report: `kinds` makes one call of each kind; `unary N` makes N
        unary calls; `deadline MS` calls `Slow` (which takes 3 s) with a
        deadline of MS milliseconds.
"""

import json
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "upshift.test.Echo"


def serve(name, fail_every):
    calls = {"n": 0}
    lock = threading.Lock()
    tag = name.encode()

    def served(context):
        context.set_trailing_metadata((("x-served-by", name),))

    def unary(request, context):
        with lock:
            calls["n"] += 1
            n = calls["n"]
        served(context)
        if fail_every and n % fail_every == 0:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{name} is failing call {n}")
        return tag + b":" + request

    def server_stream(request, context):
        served(context)
        for i in range(3):
            yield tag + b":" + request + b":" + str(i).encode()

    def client_stream(requests, context):
        served(context)
        return tag + b":" + b"+".join(requests)

    def bidi(requests, context):
        served(context)
        for request in requests:
            yield tag + b":" + request

    def slow(request, context):
        time.sleep(3)
        return tag + b":" + request

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # Ends with the test, which closes this process's stdin.
    sys.stdin.read()
    server.stop(0)


def outcome(call, reply):
    """The report of one finished call."""
    trailers = dict(call.trailing_metadata() or ())
    headers = dict(call.initial_metadata() or ())
    return {
        "code": call.code().name,
        "details": call.details(),
        "reply": reply,
        "served_by": trailers.get("x-served-by"),
        "upstream": headers.get("x-upshift-upstream"),
    }


def failure(error):
    return {"code": error.code().name, "details": error.details()}


def call(address, scenario, arg):
    channel = grpc.insecure_channel(address)
    method = lambda kind, name: getattr(channel, kind)(f"/{SERVICE}/{name}")
    text = lambda replies: [r.decode() for r in replies]
    report = {}
    if scenario == "kinds":
        reply, c = method("unary_unary", "Unary").with_call(b"hello", timeout=10)
        report["unary"] = outcome(c, reply.decode())
        c = method("unary_stream", "ServerStream")(b"s", timeout=10)
        report["server_stream"] = outcome(c, text(list(c)))
        reply, c = method("stream_unary", "ClientStream").with_call(
            iter([b"a", b"b", b"c"]), timeout=10
        )
        report["client_stream"] = outcome(c, reply.decode())
        # Each message waits for the answer to the one before: the gateway
        # must not hold the stream for its end.
        asked = []
        ready = threading.Event()
        ready.set()

        def ask():
            for word in (b"x", b"y", b"z"):
                ready.wait(10)
                ready.clear()
                asked.append(word)
                yield word

        c = method("stream_stream", "Bidi")(ask(), timeout=10)
        replies = []
        for reply in c:
            replies.append(reply.decode())
            ready.set()
        report["bidi"] = outcome(c, replies)
    elif scenario == "unary":
        calls = []
        for i in range(int(arg)):
            try:
                reply, c = method("unary_unary", "Unary").with_call(
                    str(i).encode(), timeout=10
                )
                calls.append(outcome(c, reply.decode()))
            except grpc.RpcError as error:
                calls.append({**failure(error), **outcome(error, None)})
        report["calls"] = calls
    elif scenario == "deadline":
        started = time.monotonic()
        try:
            method("unary_unary", "Slow")(b"late", timeout=int(arg) / 1000)
            report["code"] = "OK"
        except grpc.RpcError as error:
            report.update(failure(error))
        report["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        call(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
