#!/usr/bin/env python3
"""Check deploy/kubernetes/podmonitor.yaml against the PodMonitor CRD's schema.

kubernetes-validate (which checks the DaemonSet, Service and Namespace) has no schema for
custom resources and lets a PodMonitor pass unchecked. deploy/kubernetes/podmonitor.schema.json
restates the part of the Prometheus Operator's CRD schema the manifest uses; this validates the
manifest against it with jsonschema (installed with kubernetes-validate).

Usage: check_podmonitor.py [MANIFEST [SCHEMA]]; exit 0 when valid, 1 with one line per error.
"""
import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(__file__).resolve().parent.parent
manifest = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else root / "deploy/kubernetes/podmonitor.yaml")
schema_path = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else root / "deploy/kubernetes/podmonitor.schema.json")

schema = json.loads(schema_path.read_text())
docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d is not None]
errors = []
for i, doc in enumerate(docs):
    v = jsonschema.Draft202012Validator(schema)
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in e.path) or "(top)"
        errors.append(f"{manifest}: document {i}: {where}: {e.message}")
if not docs:
    errors.append(f"{manifest}: no document")
for e in errors:
    print(e, file=sys.stderr)
if errors:
    sys.exit(1)
print(f"{manifest}: {len(docs)} PodMonitor(s) valid against {schema_path.name}")
