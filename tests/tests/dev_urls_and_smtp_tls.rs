//! Security settings of issue 12 over real components: development URL flags need the
//! deployment's switch (`CLASSY_SYNC_ALLOW_DEV_URLS`), an SMTP password never travels over a
//! connection that is not TLS (a real SMTP server receives nothing), and a plugin reads only
//! its own organization's secrets.

use classy_sandbox::SandboxConfig;
use classy_sync_core::domain::keys::{org_pk, plugin_config_sk};
use classy_sync_core::engine::plugins::PushOptions;
use classy_sync_core::ports::destination::plugin_secret_name;
use classy_sync_core::ports::store::{Condition, Item};
use classy_sync_core::ports::{
    Clock, DeliveryStatus, MailTransport, ManualClock, Message, MessageKind, Notifier,
    PluginConfig, Severity,
};
use classy_sync_local::smtp::{SmtpMailer, TlsMode};
use classy_sync_local::{SecretsFile, SqliteStore};
use classy_sync_notify::channel::{self, ChannelConfig, ChannelKind, ChannelSecrets};
use classy_sync_notify::{NotificationService, NotifySettings};
use classy_sync_tests::smtp_sink::SmtpSink;
use classy_sync_tests::Harness;
use secrecy::SecretString;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Env {
    store: Arc<SqliteStore>,
    secrets: Arc<SecretsFile>,
    _dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    Env {
        store: Arc::new(SqliteStore::open(dir.path().join("store.db")).unwrap()),
        secrets: Arc::new(SecretsFile::open(dir.path().join("secrets.json")).unwrap()),
        _dir: dir,
    }
}

impl Env {
    fn service(&self, settings: NotifySettings) -> NotificationService {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(chrono::Utc::now()));
        NotificationService::new(self.store.clone(), self.secrets.clone(), clock, settings)
    }
}

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        kind: MessageKind::Test,
        severity: Severity::Info,
        org_id: None,
        subject: "test".into(),
        text: "hello".into(),
        fields: vec![],
        html: None,
        slack_blocks: None,
    }
}

/// A loopback HTTP receiver counting the requests it gets.
async fn receiver() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), hits)
}

fn settings(switch: Option<&'static str>) -> NotifySettings {
    NotifySettings::from_lookup(move |k| match k {
        "CLASSY_SYNC_ALLOW_DEV_URLS" => switch.map(str::to_owned),
        _ => None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_http_loopback_needs_the_deployment_switch() {
    let e = env();
    let (url, hits) = receiver().await;
    let cfg = ChannelConfig {
        name: "dev-slack".into(),
        kind: ChannelKind::Slack,
        to: vec![],
        allow_http_loopback: true,
    };
    let secrets = ChannelSecrets {
        url: Some(url.clone()),
        ..ChannelSecrets::default()
    };

    // Without the switch: refused when added, naming the flag and the switch.
    let off = e.service(settings(None));
    let err = off
        .add_channel(&cfg, &secrets)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("allow_http_loopback") && err.contains("CLASSY_SYNC_ALLOW_DEV_URLS"),
        "{err}"
    );
    // A channel stored earlier (or by hand) with the flag is not honoured at send time.
    channel::add_channel(e.store.as_ref(), e.secrets.as_ref(), &cfg, &secrets)
        .await
        .unwrap();
    let reports = off
        .notify(&message("m-off"), &["dev-slack".into()])
        .await
        .unwrap();
    assert_eq!(reports[0].status, DeliveryStatus::Failed, "{reports:?}");
    assert!(
        reports[0]
            .error
            .as_deref()
            .is_some_and(|r| r.contains("URL refused")),
        "{reports:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the receiver"
    );

    // With the switch (development): accepted and delivered.
    let on = e.service(settings(Some("1")));
    channel::remove_channel(e.store.as_ref(), e.secrets.as_ref(), "dev-slack")
        .await
        .unwrap();
    on.add_channel(&cfg, &secrets).await.unwrap();
    let reports = on
        .notify(&message("m-on"), &["dev-slack".into()])
        .await
        .unwrap();
    assert_eq!(reports[0].status, DeliveryStatus::Sent, "{reports:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Metadata addresses are never allow-listable, switch or not.
    let err = NotifySettings::from_lookup(|k| match k {
        "CLASSY_SYNC_NOTIFY_ALLOW" => Some("hooks.internal, 169.254.169.254".into()),
        "CLASSY_SYNC_ALLOW_DEV_URLS" => Some("1".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(
        err.contains("CLASSY_SYNC_NOTIFY_ALLOW") && err.contains("link-local"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_password_is_never_sent_without_tls() {
    let sink = SmtpSink::start(0);
    let e = env();
    // The sink speaks plain SMTP (no STARTTLS): opportunistic TLS would send in clear.
    let plain = Arc::new(SmtpMailer::parse(&sink.url()).unwrap());
    let base = NotifySettings::from_lookup(|k| match k {
        "CLASSY_SYNC_EMAIL_FROM" => Some("alerts@example.org".into()),
        _ => None,
    })
    .unwrap();
    let svc = e.service(base.with_email(plain.clone()));
    let cfg = ChannelConfig {
        name: "ops-mail".into(),
        kind: ChannelKind::Email,
        to: vec!["ops@example.org".into()],
        allow_http_loopback: false,
    };
    let with_password = ChannelSecrets {
        smtp_password: Some("hunter2-smtp".into()),
        ..ChannelSecrets::default()
    };
    // Refused when the channel is added, naming the field.
    let err = svc
        .add_channel(&cfg, &with_password)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("smtp_password") && err.contains("not TLS"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    // At send time too, even with a user name (AUTH would follow): nothing reaches the server.
    let with_user = SmtpMailer {
        username: Some("bot".into()),
        ..(*plain).clone()
    };
    assert_eq!(with_user.tls, TlsMode::Opportunistic);
    let mail = classy_sync_core::ports::Email {
        from: "alerts@example.org".into(),
        to: vec!["ops@example.org".into()],
        subject: "s".into(),
        raw: b"From: alerts@example.org\r\nTo: ops@example.org\r\nSubject: s\r\n\r\nt\r\n".to_vec(),
    };
    let err = with_user
        .send(&mail, Some("hunter2-smtp"))
        .await
        .unwrap_err();
    assert!(err.permanent, "{err:?}");
    assert!(
        err.reason.contains("smtp_password") && err.reason.contains("not TLS"),
        "{}",
        err.reason
    );
    // Without a password the same server is fine (and proves the sink is listening).
    with_user.send(&mail, None).await.unwrap();
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "only the password-less message arrived");

    // A user name in the URL needs TLS from the start.
    let url = sink.url().replace("smtp://", "smtp://bot@");
    let err = SmtpMailer::parse(&url).unwrap_err();
    assert!(
        err.contains("CLASSY_SYNC_SMTP_URL") && err.contains("TLS"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reads_only_its_own_organizations_secrets() {
    let h = Harness::start(SandboxConfig {
        orgs: 2,
        supporters: 5,
        transactions: 5,
        plans: 1,
        campaigns: 1,
        ..SandboxConfig::default()
    })
    .await;
    let (a, b) = (h.orgs[0], h.orgs[1]);
    let theirs = plugin_secret_name(b, "mailchimp");
    h.root
        .secrets
        .put(
            &theirs,
            SecretString::from("b-key-0123456789abcdef-us1".to_string()),
        )
        .await
        .unwrap();
    let foreign = PluginConfig {
        plugin: "mailchimp".into(),
        enabled: true,
        settings: json!({"list_id": "abc123"}),
        secret_name: Some(theirs.clone()),
    };

    // Configuring organization A with B's secret is refused.
    let err = h
        .plugins
        .put_plugin_config(a, foreign.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("secret_name") && err.contains(&format!("classy-sync/{a}/")),
        "{err}"
    );
    // So are names outside any organization and A's own Classy credential.
    for name in [
        "classy-sync/_channels/ops".to_string(),
        format!("classy-sync/{a}/classy"),
        format!("classy-sync/{a}/../{b}/mailchimp"),
    ] {
        let cfg = PluginConfig {
            secret_name: Some(name.clone()),
            ..foreign.clone()
        };
        assert!(
            h.plugins.put_plugin_config(a, cfg).await.is_err(),
            "{name} accepted"
        );
    }

    // A configuration stored anyway (older data, a hand edit) cannot read B's secret: the
    // push fails on the secret, and the plugin's secret store refuses the name.
    h.data
        .store
        .put(
            Item::json(org_pk(a), plugin_config_sk("mailchimp"), &foreign),
            Condition::Always,
        )
        .await
        .unwrap();
    let runs = h
        .plugins
        .push_org(
            a,
            &PushOptions {
                plugin: Some("mailchimp".into()),
                ..PushOptions::default()
            },
        )
        .await
        .unwrap();
    let err = runs[0].result.as_ref().expect_err("refused");
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("b-key"), "{err}");
    let ctx = h.plugins.destination_context(a, foreign, true);
    assert!(ctx.secrets.get(&theirs).await.is_err());
    assert!(ctx
        .secrets
        .get(&format!("classy-sync/{a}/classy"))
        .await
        .is_err());
    // Its own namespace is readable.
    h.root
        .secrets
        .put(
            &plugin_secret_name(a, "mailchimp"),
            SecretString::from("a-key".to_string()),
        )
        .await
        .unwrap();
    assert!(ctx
        .secrets
        .get(&plugin_secret_name(a, "mailchimp"))
        .await
        .is_ok());
}
