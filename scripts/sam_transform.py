#!/usr/bin/env python3
"""Prints infra/template.yaml (or the template given) transformed by the SAM translator, as
CloudFormation JSON: what `sam deploy` hands CloudFormation, Globals merged into each
function, events expanded into rules, permissions and event source mappings.

    .venv/bin/python scripts/sam_transform.py [TEMPLATE]

Local CodeUri paths are replaced by an S3 placeholder (as `sam package` would upload them);
managed policies are not looked up (the template names none). No AWS call is made.
Used by tests/tests/wiring_contract.rs and the whole-stack test (tests/src/template.rs).
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    def load(self):
        return {}


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "infra", "template.yaml")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path) as f:
        template = yaml_parse(f.read())
    placeholder = "s3://classy-sync-artifacts/function.zip"
    glob = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in glob:
        glob["CodeUri"] = placeholder
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = placeholder
    out = transform(template, {}, NoManagedPolicies())
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
