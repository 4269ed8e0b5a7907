#!/usr/bin/env python3
"""A misbehaving TLS proxy in front of a real OCI registry (issue 14 tests).

It forwards GET and HEAD requests to the upstream registry over HTTPS and, depending on
--mode, damages what the runner receives:

  pass         forward unchanged
  corrupt      flip one byte of every blob body (same length)
  truncate     announce a blob's full Content-Length, send half of it, close
  redirect     answer blob requests with 307 to --redirect-to (another origin)
  redirect-same  answer blob requests with 307 to the same path on this proxy (same
               origin) with ?moved=1, then serve them
  huge-layer   rewrite the manifest's layer size to 10 GiB (the blob is never needed)
  huge-body    answer blob requests with Content-Length 10 GiB and stream zeros

Every request line is appended to --log, so a test can tell which requests were made.
Standard library only. It writes its port to --port-file once listening.
"""

import argparse
import http.client
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEN_GIB = 10 * 1024 * 1024 * 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True, help="CA that signed the upstream's certificate")
    p.add_argument("--upstream", required=True, help="host:port of the registry")
    p.add_argument("--mode", required=True)
    p.add_argument("--redirect-to", default="")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()

    upstream_ctx = ssl.create_default_context(cafile=args.ca)
    host, port = args.upstream.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def forward(self):
            conn = http.client.HTTPSConnection(host, int(port), context=upstream_ctx)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request(self.command, self.path, headers=headers)
            return conn.getresponse()

        def handle_request(self):
            with open(args.log, "a") as f:
                f.write(f"{self.command} {self.path}\n")
            blob = "/blobs/sha256:" in self.path
            manifest = "/manifests/" in self.path
            if blob and args.mode == "redirect-same" and "moved=1" not in self.path:
                self.send_response(307)
                self.send_header("Location", self.path + "?moved=1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "?moved=1" in self.path:
                self.path = self.path.replace("?moved=1", "")
            if blob and args.mode == "redirect":
                self.send_response(307)
                self.send_header("Location", args.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if blob and args.mode == "huge-body" and self.command == "GET":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(TEN_GIB))
                self.end_headers()
                chunk = b"\0" * 65536
                try:
                    for _ in range(TEN_GIB // len(chunk)):
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    pass
                self.close_connection = True
                return
            resp = self.forward()
            body = resp.read()
            if manifest and args.mode == "huge-layer" and resp.status == 200:
                doc = json.loads(body)
                doc["layers"][0]["size"] = TEN_GIB
                body = json.dumps(doc).encode()
            if blob and args.mode == "corrupt" and resp.status == 200 and body:
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1:]
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() in ("content-length", "transfer-encoding", "connection"):
                    continue
                if k.lower() == "docker-content-digest" and args.mode == "huge-layer":
                    continue
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if blob and args.mode == "truncate" and self.command == "GET":
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            self.handle_request()

        def do_HEAD(self):
            self.handle_request()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
