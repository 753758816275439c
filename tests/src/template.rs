//! `infra/template.yaml` as CloudFormation receives it: transformed by the SAM translator
//! (`scripts/sam_transform.py`, in the venv of requirements-dev.txt), with a resolver for
//! `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join` and `Fn::If` that gives every resource the
//! physical name and ARN CloudFormation would (account 123456789012, us-east-1), or the
//! value a test substitutes (a moto queue URL).
//!
//! `$CLASSY_SYNC_TEMPLATE` names another template (to check an older one).
//! Python is `$PYTHON` (the Makefile's venv), else `<workspace>/.venv/bin/python`, else
//! `python3`; without the translator [`transformed`] panics saying so.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";
pub const PARTITION: &str = "aws";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace().join(".venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

/// The transformed template (computed once per test binary).
pub fn transformed() -> &'static Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| {
        let script = workspace().join("scripts/sam_transform.py");
        let out = Command::new(python())
            .arg(&script)
            .arg(
                std::env::var_os("CLASSY_SYNC_TEMPLATE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| workspace().join("infra/template.yaml")),
            )
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
        assert!(
            out.status.success(),
            "{} failed (is aws-sam-translator installed? `make setup`):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the translator prints JSON")
    })
}

/// The resources of type `ty`, by logical id.
pub fn resources<'a>(t: &'a Value, ty: &str) -> Vec<(&'a str, &'a Value)> {
    t["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(k, r)| (k.as_str(), r))
        .collect()
}

/// The Lambda function built from `binary` (`Metadata.BuildProperties.Binary`): its
/// logical id and resource.
pub fn function<'a>(t: &'a Value, binary: &str) -> (&'a str, &'a Value) {
    let found: Vec<_> = resources(t, "AWS::Lambda::Function")
        .into_iter()
        .filter(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one function is built from binary {binary}"
    );
    found[0]
}

/// Values of intrinsic functions, as CloudFormation would give them for a stack with the
/// parameters' defaults (or `parameters`), with `overrides` for `Ref`s and `GetAtt`s a
/// test points at its own resources.
pub struct Resolver<'a> {
    t: &'a Value,
    pub parameters: BTreeMap<String, String>,
    /// `"Logical"` (a `Ref`) or `"Logical.Attribute"` → value.
    pub overrides: BTreeMap<String, Value>,
}

impl<'a> Resolver<'a> {
    pub fn new(t: &'a Value) -> Resolver<'a> {
        let mut parameters = BTreeMap::new();
        if let Some(ps) = t["Parameters"].as_object() {
            for (name, p) in ps {
                let d = match &p["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    v => v.to_string(),
                };
                parameters.insert(name.clone(), d);
            }
        }
        for (k, v) in [
            ("AWS::AccountId", ACCOUNT),
            ("AWS::Region", REGION),
            ("AWS::Partition", PARTITION),
            ("AWS::StackName", "classy-sync"),
            ("AWS::URLSuffix", "amazonaws.com"),
        ] {
            parameters.insert(k.into(), v.into());
        }
        Resolver {
            t,
            parameters,
            overrides: BTreeMap::new(),
        }
    }

    pub fn set_parameter(&mut self, name: &str, value: &str) {
        assert!(
            self.t["Parameters"].get(name).is_some(),
            "the template has no parameter {name}"
        );
        self.parameters.insert(name.into(), value.into());
    }

    fn resource(&self, id: &str) -> Result<&Value, String> {
        self.t["Resources"]
            .get(id)
            .ok_or_else(|| format!("no resource or parameter {id}"))
    }

    fn name_prop(&self, id: &str, prop: &str) -> Result<String, String> {
        let r = self.resource(id)?;
        match r["Properties"].get(prop) {
            Some(v) => self.resolve_str(v),
            None => Ok(format!("classy-sync-{id}")),
        }
    }

    /// `Ref` of a parameter or resource.
    pub fn reference(&self, id: &str) -> Result<Value, String> {
        if let Some(v) = self.overrides.get(id) {
            return Ok(v.clone());
        }
        if let Some(p) = self.parameters.get(id) {
            if let Some(def) = self.t["Parameters"].get(id) {
                if def["Type"] == "CommaDelimitedList" {
                    return Ok(Value::Array(
                        p.split(',').map(|s| Value::String(s.into())).collect(),
                    ));
                }
            }
            return Ok(Value::String(p.clone()));
        }
        let r = self.resource(id)?;
        let ty = r["Type"].as_str().unwrap_or_default();
        let s = match ty {
            "AWS::DynamoDB::Table" => self.name_prop(id, "TableName")?,
            "AWS::SQS::Queue" => format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                self.name_prop(id, "QueueName")?
            ),
            "AWS::Events::EventBus" => self.name_prop(id, "Name")?,
            "AWS::Lambda::Function" => self.name_prop(id, "FunctionName")?,
            "AWS::Logs::LogGroup" => self.name_prop(id, "LogGroupName")?,
            "AWS::CloudWatch::Alarm" => self.name_prop(id, "AlarmName")?,
            "AWS::SNS::Topic" => format!(
                "arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{}",
                self.name_prop(id, "TopicName")?
            ),
            "AWS::Scheduler::ScheduleGroup" => self.name_prop(id, "Name")?,
            _ => id.to_owned(),
        };
        Ok(Value::String(s))
    }

    /// `Fn::GetAtt`.
    pub fn attribute(&self, id: &str, attr: &str) -> Result<Value, String> {
        if let Some(v) = self.overrides.get(&format!("{id}.{attr}")) {
            return Ok(v.clone());
        }
        let r = self.resource(id)?;
        let ty = r["Type"].as_str().unwrap_or_default();
        let arn = |service: &str, rest: String| {
            Ok(Value::String(format!(
                "arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{rest}"
            )))
        };
        match (ty, attr) {
            ("AWS::DynamoDB::Table", "Arn") => arn(
                "dynamodb",
                format!("table/{}", self.name_prop(id, "TableName")?),
            ),
            ("AWS::SQS::Queue", "Arn") => arn("sqs", self.name_prop(id, "QueueName")?),
            ("AWS::SQS::Queue", "QueueName") => Ok(Value::String(self.name_prop(id, "QueueName")?)),
            ("AWS::SQS::Queue", "QueueUrl") => self.reference(id),
            ("AWS::Events::EventBus", "Arn") => arn(
                "events",
                format!("event-bus/{}", self.name_prop(id, "Name")?),
            ),
            ("AWS::Events::EventBus", "Name") => Ok(Value::String(self.name_prop(id, "Name")?)),
            ("AWS::Events::Rule", "Arn") => {
                arn("events", format!("rule/{}", self.name_prop(id, "Name")?))
            }
            ("AWS::Lambda::Function", "Arn") => arn(
                "lambda",
                format!("function:{}", self.name_prop(id, "FunctionName")?),
            ),
            ("AWS::Logs::LogGroup", "Arn") => arn(
                "logs",
                format!("log-group:{}:*", self.name_prop(id, "LogGroupName")?),
            ),
            ("AWS::CloudWatch::Alarm", "Arn") => arn(
                "cloudwatch",
                format!("alarm:{}", self.name_prop(id, "AlarmName")?),
            ),
            ("AWS::IAM::Role", "Arn") => Ok(Value::String(format!(
                "arn:{PARTITION}:iam::{ACCOUNT}:role/{id}"
            ))),
            ("AWS::SNS::Topic", "TopicArn") => self.reference(id),
            ("AWS::Scheduler::ScheduleGroup", "Arn") => arn(
                "scheduler",
                format!("schedule-group/{}", self.name_prop(id, "Name")?),
            ),
            ("AWS::KMS::Key", "Arn") => arn("kms", format!("key/{id}")),
            _ => Err(format!("Fn::GetAtt {id}.{attr} ({ty}) is not modelled")),
        }
    }

    /// A condition of the template's `Conditions`.
    pub fn condition(&self, name: &str) -> Result<bool, String> {
        let c = self.t["Conditions"]
            .get(name)
            .ok_or_else(|| format!("no condition {name}"))?;
        self.eval_condition(c)
    }

    fn eval_condition(&self, c: &Value) -> Result<bool, String> {
        let obj = c.as_object().ok_or("a condition is an object")?;
        let (f, args) = obj.iter().next().ok_or("an empty condition")?;
        let list = args.as_array().cloned().unwrap_or_default();
        match f.as_str() {
            "Fn::Equals" => {
                let a = self.resolve(&list[0])?;
                let b = self.resolve(&list[1])?;
                let s = |v: Value| match v {
                    Value::String(s) => s,
                    v => v.to_string(),
                };
                Ok(s(a) == s(b))
            }
            "Fn::Not" => Ok(!self.eval_condition(&list[0])?),
            "Fn::And" => list.iter().try_fold(true, |acc, c| {
                Ok::<_, String>(acc && self.eval_condition(c)?)
            }),
            "Fn::Or" => list.iter().try_fold(false, |acc, c| {
                Ok::<_, String>(acc || self.eval_condition(c)?)
            }),
            "Condition" => self.condition(args.as_str().unwrap_or_default()),
            other => Err(format!("condition function {other} is not modelled")),
        }
    }

    pub fn resolve_str(&self, v: &Value) -> Result<String, String> {
        match self.resolve(v)? {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("{other} is not a string")),
        }
    }

    fn sub(&self, template: &str, vars: &Map<String, Value>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or("an unclosed ${ in Fn::Sub")?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(&self.resolve_str(v)?);
            } else if let Some((id, attr)) = name.split_once('.') {
                out.push_str(&value_str(self.attribute(id, attr)?)?);
            } else {
                out.push_str(&value_str(self.reference(name)?)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves every intrinsic function in `v`.
    pub fn resolve(&self, v: &Value) -> Result<Value, String> {
        match v {
            Value::Array(items) => items.iter().map(|i| self.resolve(i)).collect(),
            Value::Object(o) if o.len() == 1 => {
                let (k, arg) = o.iter().next().expect("one key");
                match k.as_str() {
                    "Ref" => self.reference(arg.as_str().ok_or("Ref takes a name")?),
                    "Fn::GetAtt" => {
                        let (id, attr) = match arg {
                            Value::Array(a) => (
                                a[0].as_str().unwrap_or_default().to_owned(),
                                a[1].as_str().unwrap_or_default().to_owned(),
                            ),
                            Value::String(s) => {
                                let (a, b) = s.split_once('.').ok_or("GetAtt A.B")?;
                                (a.to_owned(), b.to_owned())
                            }
                            _ => return Err("Fn::GetAtt takes [id, attr]".into()),
                        };
                        self.attribute(&id, &attr)
                    }
                    "Fn::Sub" => {
                        let (s, vars) = match arg {
                            Value::String(s) => (s.clone(), Map::new()),
                            Value::Array(a) => (
                                a[0].as_str().unwrap_or_default().to_owned(),
                                a[1].as_object().cloned().unwrap_or_default(),
                            ),
                            _ => return Err("Fn::Sub takes a string".into()),
                        };
                        Ok(Value::String(self.sub(&s, &vars)?))
                    }
                    "Fn::Join" => {
                        let a = arg.as_array().ok_or("Fn::Join takes [sep, list]")?;
                        let sep = a[0].as_str().unwrap_or_default();
                        let items = match self.resolve(&a[1])? {
                            Value::Array(items) => items,
                            other => vec![other],
                        };
                        let parts: Result<Vec<String>, String> =
                            items.into_iter().map(value_str).collect();
                        Ok(Value::String(parts?.join(sep)))
                    }
                    "Fn::If" => {
                        let a = arg.as_array().ok_or("Fn::If takes [cond, a, b]")?;
                        let branch = if self.condition(a[0].as_str().unwrap_or_default())? {
                            &a[1]
                        } else {
                            &a[2]
                        };
                        self.resolve(branch)
                    }
                    "Fn::Select" | "Fn::Split" | "Fn::ImportValue" | "Fn::FindInMap" => {
                        Err(format!("{k} is not modelled"))
                    }
                    _ => Ok(Value::Object(
                        o.iter()
                            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                            .collect::<Result<_, String>>()?,
                    )),
                }
            }
            Value::Object(o) => Ok(Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                    .collect::<Result<_, String>>()?,
            )),
            other => Ok(other.clone()),
        }
    }

    /// The environment of the function built from `binary`, every value resolved: names
    /// and literal values as the template gives them.
    pub fn function_env(&self, binary: &str) -> BTreeMap<String, String> {
        let (id, f) = function(self.t, binary);
        let vars = f["Properties"]["Environment"]["Variables"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        vars.iter()
            .map(|(k, v)| {
                let v = self
                    .resolve_str(v)
                    .unwrap_or_else(|e| panic!("{id} {k}: {e}"));
                (k.clone(), v)
            })
            .collect()
    }
}

fn value_str(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{other} is not a string")),
    }
}
