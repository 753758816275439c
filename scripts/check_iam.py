#!/usr/bin/env python3
"""Least privilege of infra/template.yaml, checked by evaluating its IAM statements.

    python3 scripts/check_iam.py [infra/template.yaml]

Run by scripts/lint-infra.sh (part of `make test`). For each function (through its `Role`),
it evaluates the Allow and Deny statements of the role's inline policies and of every
AWS::IAM::RolePolicy attached to it against sample secret ARNs, and requires:

- secrets: each function reads exactly the kinds of secret it needs (docs/deploy.md#iam):
  sync-worker the Classy credentials `classy-sync/<org>/classy`, plugin-worker the destination
  credentials `classy-sync/<org>/<plugin>`, health-check both and the secret-store probe,
  alert and report the notification channels `classy-sync/_channels/<name>`, webhook the
  organizations' webhook signing secrets `classy-sync/<org>/webhook`, dispatch none;
- KMS: every role that reads or writes the table has a `HasTableKmsKey` policy on
  `TableKmsKeyArn` with kms:Decrypt and kms:DescribeKey (DynamoDB decrypts the table key on
  the caller's behalf for reads and writes alike), limited to DynamoDB (kms:ViaService);
- SES: sending is allowed only on the configured identity (`${ReportSenderIdentity}`), never
  on `identity/*`.

Exits 1 with one line per violation.
"""

import fnmatch
import re
import sys
from pathlib import Path

import yaml


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) as their long forms."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)

# One sample secret of each kind, as Secrets Manager names them (name + "-" + 6 characters).
# A channel may be named like a service ("classy", "mailchimp"): it is still a channel.
SAMPLES = {
    "classy": ["classy-sync/1234/classy-AbC123", "classy-sync/987654/classy-zzzzzz"],
    "plugin": [
        "classy-sync/1234/mailchimp-AbC123",
        "classy-sync/1234/change-feed-AbC123",
    ],
    "channel": [
        "classy-sync/_channels/ops-AbC123",
        "classy-sync/_channels/classy-AbC123",
        "classy-sync/_channels/mailchimp-AbC123",
    ],
    "probe": ["classy-sync/health/probe-AbC123"],
    "webhook": ["classy-sync/1234/webhook-AbC123", "classy-sync/987654/webhook-zzzzzz"],
}

# Binary (Metadata.BuildProperties.Binary) -> the kinds of secret it reads.
NEEDS = {
    "dispatch": set(),
    "sync-worker": {"classy"},
    "plugin-worker": {"plugin"},
    "health-check": {"classy", "plugin", "probe"},
    "alert": {"channel"},
    "report": {"channel"},
    "webhook": {"webhook"},
}

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"


def render(value):
    """A resource value as an ARN pattern: pseudo parameters filled in, other references kept
    as `${Name}` (so `${ReportSenderIdentity}` stays recognisable)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            s = value["Fn::Sub"]
            s = s[0] if isinstance(s, list) else s
            for k, v in {
                "AWS::Partition": "aws",
                "AWS::Region": "us-east-1",
                "AWS::AccountId": "123456789012",
            }.items():
                s = s.replace("${" + k + "}", v)
            return s
        if "Ref" in value:
            return "${" + value["Ref"] + "}"
        if "Fn::GetAtt" in value:
            return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return repr(value)


def as_list(v):
    return v if isinstance(v, list) else [v]


def action_matches(pattern, action):
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def resource_matches(pattern, arn):
    # IAM wildcards: * any run of characters (slashes included), ? one character.
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, arn) is not None


def main(path):
    template = yaml.load(Path(path).read_text(), Loader=CfnLoader)
    res = template["Resources"]
    problems = []

    # Role -> [(statement, condition of the policy resource or None)]
    statements = {}
    for name, r in res.items():
        if r.get("Type") == "AWS::IAM::Role":
            for p in r["Properties"].get("Policies", []):
                for st in as_list(p["PolicyDocument"]["Statement"]):
                    statements.setdefault(name, []).append((st, None))
    for name, r in res.items():
        if r.get("Type") == "AWS::IAM::RolePolicy":
            role = r["Properties"]["RoleName"]
            role = role["Ref"] if isinstance(role, dict) else role
            for st in as_list(r["Properties"]["PolicyDocument"]["Statement"]):
                statements.setdefault(role, []).append((st, r.get("Condition")))

    def allowed(role, action, arn):
        sts = statements.get(role, [])

        def hit(st):
            return any(action_matches(a, action) for a in as_list(st.get("Action", []))) and any(
                resource_matches(render(x), arn) for x in as_list(st.get("Resource", []))
            )

        if any(st.get("Effect") == "Deny" and hit(st) for st, _ in sts):
            return False
        return any(st.get("Effect") == "Allow" and hit(st) for st, _ in sts)

    functions = {}
    for name, r in res.items():
        if r.get("Type") == "AWS::Serverless::Function":
            binary = r.get("Metadata", {}).get("BuildProperties", {}).get("Binary", name)
            role = r["Properties"]["Role"]["Fn::GetAtt"][0]
            functions[binary] = role

    missing = set(NEEDS) - set(functions)
    if missing:
        problems.append(f"functions not found in the template: {sorted(missing)}")

    for binary, role in sorted(functions.items()):
        needs = NEEDS.get(binary)
        if needs is None:
            problems.append(f"{binary}: unknown function (add it to NEEDS in {__file__})")
            continue
        for kind, names in SAMPLES.items():
            for secret in names:
                ok = allowed(role, "secretsmanager:GetSecretValue", SECRET_ARN + secret)
                if ok and kind not in needs:
                    problems.append(f"{binary} ({role}) can read {secret} ({kind}): it must not")
                if not ok and kind in needs:
                    problems.append(f"{binary} ({role}) cannot read {secret} ({kind}): it needs it")

    # KMS for a customer managed table key, on every role that uses the table.
    for role, sts in sorted(statements.items()):
        table_actions = set()
        for st, _ in sts:
            if st.get("Effect") != "Allow":
                continue
            if any(render(x).startswith("${Table.Arn") for x in as_list(st.get("Resource", []))):
                table_actions |= {a for a in as_list(st["Action"]) if a.startswith("dynamodb:")}
        if not table_actions:
            continue
        key = [
            st
            for st, cond in sts
            if cond == "HasTableKmsKey"
            and st.get("Effect") == "Allow"
            and "${TableKmsKeyArn}" in [render(x) for x in as_list(st.get("Resource", []))]
        ]
        acts = {a for st in key for a in as_list(st["Action"])}
        # DynamoDB decrypts the table key for reads and writes alike.
        want = {"kms:Decrypt", "kms:DescribeKey"}
        if not want <= acts:
            problems.append(
                f"{role} uses the table but its HasTableKmsKey policy lacks {sorted(want - acts)}"
            )
        for st in key:
            via = st.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
            if via is None or "dynamodb" not in render(via):
                problems.append(f"{role}: the table key grant is not limited to DynamoDB")

    # SES: only the configured identity.
    for role, sts in sorted(statements.items()):
        for st, _ in sts:
            if st.get("Effect") != "Allow":
                continue
            if not any(a.lower().startswith("ses:") for a in as_list(st.get("Action", []))):
                continue
            for x in as_list(st.get("Resource", [])):
                arn = render(x)
                if not arn.endswith(":identity/${ReportSenderIdentity}"):
                    problems.append(f"{role}: SES sending on {arn}, not the configured identity")

    for p in problems:
        print(f"check-iam: {p}")
    if not problems:
        print(f"check-iam: ok ({len(functions)} functions)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "infra/template.yaml"))
