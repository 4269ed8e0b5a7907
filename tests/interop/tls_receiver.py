#!/usr/bin/env python3
"""A CloudEvents receiver over HTTPS for the HTTPS sink tests, on Python's own TLS
(OpenSSL through the ssl module, independent of the runner's rustls).

It listens on 127.0.0.1 (port 0: the kernel picks one, written to --port-file), serves
POST with the certificate and key it is given, optionally requires a client certificate
signed by --client-ca (mutual TLS) and a bearer token, and appends one JSON line per
request it answered to --log: {"status", "authorization", "content_type", "client_cn",
"body"}. A handshake that fails is logged as {"tls_error": "..."}.
Standard library only."""

import argparse
import email.utils
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--token")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--retry-after-date-secs", type=int)
    args = ap.parse_args()
    lock = threading.Lock()

    def log(entry):
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            auth = self.headers.get("Authorization")
            status = args.status
            if args.token is not None and auth != "Bearer " + args.token:
                status = 401
            cert = self.connection.getpeercert()
            cn = None
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            cn = v
            log({
                "status": status,
                "authorization": auth,
                "content_type": self.headers.get("Content-Type"),
                "client_cn": cn,
                "body": body.decode("utf-8", "replace"),
            })
            self.send_response(status)
            if args.retry_after_date_secs is not None:
                when = time.time() + args.retry_after_date_secs
                self.send_header("Retry-After", email.utils.formatdate(when, usegmt=True))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            sock, addr = self.socket.accept()
            try:
                return ctx.wrap_socket(sock, server_side=True), addr
            except (ssl.SSLError, OSError) as e:
                log({"tls_error": str(e)})
                sock.close()
                raise

        def handle_error(self, request, client_address):
            pass

    httpd = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    sys.stdout.flush()
    httpd.serve_forever()


if __name__ == "__main__":
    main()
