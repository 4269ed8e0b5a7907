#!/usr/bin/env python3
"""Independent check of edge-runner events: reads structured-mode CloudEvents, one JSON
document per line on stdin, and for each one

1. validates it against the official CloudEvents v1.0.2 JSON schema (--schema) with
   format checking on (date-time, uri, uri-reference: needs rfc3339-validator and
   rfc3986-validator, verified at start so a missing package cannot silently skip it);
2. applies the spec rules the schema misses: specversion "1.0", extension names
   ^[a-z0-9]{1,20}$ and not reserved, extension values string/boolean/32-bit integer,
   not both data and data_base64, the size cap (--max-bytes);
3. parses it with the Python CloudEvents SDK, both the core v1 model
   (cloudevents.core.formats.json.JSONFormat, which validates attributes) and the HTTP
   binding (cloudevents.core.bindings.http.from_structured with
   application/cloudevents+json), and checks that writing it back keeps every attribute
   and the data;
4. for edge-runner event types, checks the linkage members are present in data.

Exits 0 when every line passes, 1 when any fails (each failure printed), 2 when the
environment is incomplete. Install: pip install cloudevents jsonschema rfc3339-validator
rfc3986-validator
"""

import argparse
import base64
import json
import re
import sys

try:
    import jsonschema
    from cloudevents.core.bindings.http import HTTPMessage, from_structured
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent
except ImportError as e:  # pragma: no cover - environment problem
    print(
        f"missing Python package ({e}); run: pip install cloudevents jsonschema "
        "rfc3339-validator rfc3986-validator",
        file=sys.stderr,
    )
    sys.exit(2)

EXT_NAME = re.compile(r"^[a-z0-9]{1,20}$")
CORE = {
    "id", "source", "specversion", "type", "datacontenttype", "dataschema",
    "subject", "time", "data", "data_base64",
}
LINKAGE = ("task_id", "tenant_id", "tool_sha256", "manifest_jws")
INT32 = (-(2**31), 2**31 - 1)


def format_checker_or_exit():
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    # A format whose validator package is missing is silently accepted by jsonschema;
    # prove each one rejects an invalid value before trusting it.
    probes = {"date-time": "yesterday", "uri-reference": "a b", "uri": "/relative"}
    for fmt, bad in probes.items():
        if checker.conforms(bad, fmt):
            print(
                f"jsonschema cannot check format {fmt!r}; run: pip install "
                "rfc3339-validator rfc3986-validator",
                file=sys.stderr,
            )
            sys.exit(2)
    return checker


def extra_rules(doc, max_bytes, raw):
    errors = []
    if doc.get("specversion") != "1.0":
        errors.append("specversion is not 1.0")
    for k in ("id", "source", "type"):
        if not isinstance(doc.get(k), str) or not doc[k]:
            errors.append(f"{k} missing or empty")
    if "data" in doc and "data_base64" in doc:
        errors.append("both data and data_base64")
    for name, value in doc.items():
        if name in CORE:
            continue
        if not EXT_NAME.match(name):
            errors.append(f"extension name {name!r} breaks ^[a-z0-9]{{1,20}}$")
        if isinstance(value, bool) or isinstance(value, str):
            continue
        if isinstance(value, int):
            if not INT32[0] <= value <= INT32[1]:
                errors.append(f"extension {name} integer {value} outside 32 bits")
            continue
        errors.append(f"extension {name} has type {type(value).__name__}")
    if max_bytes and len(raw) > max_bytes:
        errors.append(f"{len(raw)} bytes, over the {max_bytes}-byte cap")
    if doc.get("type", "").startswith("dev.edge-runner."):
        data = doc.get("data")
        if not isinstance(data, dict):
            errors.append("edge-runner event without a JSON object as data")
        else:
            for k in LINKAGE:
                if k not in data:
                    errors.append(f"data lacks linkage member {k}")
    return errors


def sdk_parse(raw, doc):
    errors = []
    event = JSONFormat().read(None, raw)
    if not isinstance(event, CloudEvent):
        errors.append(f"SDK read a {type(event).__name__}, not a v1.0 CloudEvent")
    attrs = event.get_attributes()
    for k, v in doc.items():
        if k in ("data", "data_base64", "time"):
            continue
        if attrs.get(k) != v:
            errors.append(f"SDK attribute {k} = {attrs.get(k)!r}, event has {v!r}")
    if "data" in doc and event.get_data() != doc["data"]:
        errors.append("SDK data differs from the event's data")
    if "data_base64" in doc and event.get_data() != base64.b64decode(doc["data_base64"]):
        errors.append("SDK data differs from the event's data_base64")
    # Write it back and read it again: the SDK must round-trip what we emitted.
    again = json.loads(JSONFormat().write(event))
    for k, v in doc.items():
        if k == "time":
            continue
        if again.get(k) != v:
            errors.append(f"SDK round trip changed {k}")
    # The HTTP binding, structured mode, as a receiver would get our POST.
    msg = HTTPMessage(headers={"content-type": "application/cloudevents+json"}, body=raw)
    via_http = from_structured(msg, JSONFormat())
    if via_http.get_id() != doc["id"]:
        errors.append("HTTP structured binding read a different id")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("--max-bytes", type=int, default=0)
    args = ap.parse_args()
    with open(args.schema, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(schema, format_checker=format_checker_or_exit())
    total = failed = 0
    for n, line in enumerate(sys.stdin.buffer, start=1):
        raw = line.rstrip(b"\n")
        if not raw.strip():
            continue
        total += 1
        try:
            doc = json.loads(raw)
        except ValueError as e:
            doc, errors = None, [f"not JSON: {e}"]
        if doc is not None:
            errors = [f"schema: {e.message}" for e in validator.iter_errors(doc)]
            errors += extra_rules(doc, args.max_bytes, raw)
            try:
                errors += sdk_parse(raw, doc)
            except Exception as e:  # any SDK exception is a failure of this event
                errors.append(f"SDK: {type(e).__name__}: {e}")
        if errors:
            failed += 1
            for e in errors:
                print(f"line {n}: {e}")
    print(f"{total - failed} passed, {failed} failed")
    if total == 0:
        print("no events on stdin", file=sys.stderr)
        sys.exit(1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
