#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (fuzz/corpus/<target>/) from the
repository's own vectors (tests/fixtures) and the attack cases of tests/jws_attacks.rs,
tests/manifest.rs and the event tests, so that every target starts at inputs that reach
its deepest checks. Deterministic: running it again rewrites the same files. Standard
library only. Usage: python3 fuzz/seeds.py"""

import base64
import hashlib
import json
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def tok(header, payload=b'{"a":1}', sig=b"\x01" * 32):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return f"{b64(h)}.{b64(payload)}.{b64(sig)}".encode()


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    vectors = json.load(open(os.path.join(ROOT, "tests/fixtures/rfc7515-appendix-a.json")))

    # jws_parse: the RFC vectors and every attack class.
    write("jws_parse", "rfc7515-a1", vectors["A1"]["jws"])
    write("jws_parse", "rfc7515-a3", vectors["A3"]["jws"])
    write("jws_parse", "good", tok({"alg": "ES256", "kid": "k1", "typ": "JWT"}) + b"\n")
    for i, alg in enumerate(["none", "None", "nOnE"]):
        write("jws_parse", f"alg-{i}", tok({"alg": alg, "kid": "k"}))
    for m in ["jwk", "jku", "x5u", "x5c"]:
        write("jws_parse", f"key-{m}", tok({"alg": "ES256", "kid": "k", m: "x"}))
    write("jws_parse", "crit", tok({"alg": "HS256", "kid": "k", "crit": ["exp"], "exp": 1}))
    write("jws_parse", "crit-empty", tok({"alg": "HS256", "kid": "k", "crit": []}))
    write("jws_parse", "b64", tok({"alg": "HS256", "kid": "k", "b64": False}))
    write("jws_parse", "dup", tok(b'{"alg":"ES256","kid":"k","alg":"HS256"}'))
    write("jws_parse", "deep", tok(b'{"alg":"ES256","x":' + b"[" * 20 + b"]" * 20 + b"}"))
    h, p = b64(b'{"alg":"HS256","kid":"k"}'), b64(b"{}")
    for i, s in enumerate(["AQ==", "ab+/", "AR", "AQ AQ"]):
        write("jws_parse", f"noncanon-{i}", f"{h}.{p}.{s}")
    write("jws_parse", "four-segments", f"{h}.{p}.AQ.AQ")
    write("jws_parse", "kid-control", tok({"alg": "ES256", "kid": "a\nb\u001b"}))

    # json_strict: first byte = depth cap.
    for i, doc in enumerate([
        b'{"alg":"ES256","kid":"k1"}',
        b'{"a":{"b":[1,2,{"c":null}]},"task_id":"t"}',
        b'{"a":1,"a":2}',
        b'[' * 30 + b']' * 30,
        b'"\\ud800"',
        b'{"id":"\\u0000x"} ',
        b"1e400",
        b'{"":""}',
    ]):
        write("json_strict", f"doc-{i}", bytes([16]) + doc)

    # keyset: the RFC keys (public), generated-looking keys, and the refused shapes.
    a1 = dict(vectors["A1"]["jwk"], kid="hs", alg="HS256")
    a3 = dict(vectors["A3"]["jwk_public"], kid="es", alg="ES256", use="sig")
    write("keyset", "rfc", json.dumps({"keys": [a1, a3]}))
    write("keyset", "ops", json.dumps({"keys": [dict(a3, key_ops=["verify"])]}))
    for i, bad in enumerate([
        {"keys": [dict(a3, d="AA")]},
        {"keys": [dict(a3, kid="../../etc/passwd x")]},
        {"keys": [a3, a3]},
        {"keys": [dict(a3, alg="none")]},
        {"keys": []},
    ]):
        write("keyset", f"bad-{i}", json.dumps(bad))

    # manifest: valid around the target's fixed time (2026-11-26T21:00:00Z), and the
    # refused shapes of tests/manifest.rs.
    digest = "sha256:" + hashlib.sha256(b"tool").hexdigest()
    good = {
        "manifest_version": "1",
        "task_context": {"task_id": "t-42", "tenant_id": "acme", "operator_id": "op-7",
                         "source": "cp", "action": "inspect"},
        "target_urn": "urn:target:host:web-01",
        "tool_sha256": digest,
        "args": ["--verbose", "x"],
        "env": {"MODE": "fast"},
        "parameters": {"k": [1, 2.5, "s", None, True]},
        "nonce": "b3a1c09f4e2d8a7b6c5d4e3f2a1b0c9d",
        "issued_at": "2026-11-26T20:58:00Z",
        "expires_at": "2026-11-26T21:03:00.5+00:00",
        "limits": {"timeout_ms": 1000, "memory_bytes": 67108864, "output_bytes": 4096},
    }
    write("manifest", "good", json.dumps(good))
    minimal = {k: good[k] for k in ["manifest_version", "task_context", "tool_sha256",
                                    "nonce", "issued_at", "expires_at"]}
    write("manifest", "minimal", json.dumps(minimal))
    for i, (k, v) in enumerate([
        ("env", {"LD_PRELOAD": "x"}), ("env", {"ld_preload": "x"}), ("env", {"PATH": "/x"}),
        ("nonce", "a" * 64), ("expires_at", "2026-11-26T20:00:00Z"),
        ("limits", {"timeout_ms": 0}), ("args", ["a\u0000b"]), ("unknown", 1),
        ("target_urn", "urn:a:b"), ("issued_at", "2026-11-26 20:58:00Z"),
    ]):
        write("manifest", f"bad-{i}", json.dumps(dict(good, **{k: v})))

    # event_json: events as the runner emits them (default mapper, fallback, signed) and
    # the refused shapes.
    ev = {
        "specversion": "1.0", "id": "0190b4a2-6c1e-7c3a-9a59-1d2f3e4a5b6c",
        "source": "urn:edge-runner:edge-7", "type": "dev.edge-runner.task.completed.v1",
        "time": "2026-11-26T21:00:00.000Z", "subject": "t-42",
        "datacontenttype": "application/json", "tenantid": "acme",
        "data": {"task_id": "t-42", "tenant_id": "acme", "status": "succeeded",
                 "exit_code": 0, "stdout": "hi\n"},
    }
    write("event_json", "completed", json.dumps(ev, separators=(",", ":")))
    write("event_json", "fallback", json.dumps(dict(ev, mapperfailed=True)))
    write("event_json", "signed", json.dumps(dict(ev, runnersig="eyJhbGciOiJFUzI1NiJ9..AAAA")))
    write("event_json", "binary", json.dumps({k: v for k, v in ev.items() if k != "data"}
                                             | {"data_base64": "aGk=",
                                                "datacontenttype": "application/octet-stream"}))
    for i, extra in enumerate([
        {"data_base64": "AA=="}, {"Bad": "x"}, {"big": 4294967296}, {"f": 1.5},
        {"subject": ""}, {"time": "noon"}, {"specversion": "0.3"}, {"dataschema": "rel/x"},
    ]):
        write("event_json", f"bad-{i}", json.dumps(dict(ev, **extra)))

    # plugin_component: the empty component and an empty core module (refused: not a
    # component). `just fuzz` adds the real plugins from the build (too big to commit).
    write("plugin_component", "empty-component", b"\x00asm\x0d\x00\x01\x00")
    write("plugin_component", "core-module", b"\x00asm\x01\x00\x00\x00")

    # event_verify: "edit line 0 with no edit" and "set one byte"; the signed lines are
    # made by the target itself with a fixed key.
    write("event_verify", "edit-none", bytes([0, 0, 0]))
    write("event_verify", "edit-one", bytes([0, 1, 1, 0, 0, 10, 65]))

    # spool_decode, mapper_output, mapper_input: structured (arbitrary) inputs; a few
    # byte strings with canonical and non-canonical entry names help them along.
    write("spool_decode", "names", b"\x03\x00\x00\x0000000000000000000001.json+1.json7.json\x00")
    for t in ["mapper_output", "mapper_input"]:
        write(t, "zeros", bytes(64))
        write(t, "ones", bytes([0xFF]) * 64)
        write(t, "text", b"task-42 acme \xff\x00 stdout {\"a\":1}" * 4)


if __name__ == "__main__":
    main()
