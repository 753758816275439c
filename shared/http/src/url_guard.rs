//! The SSRF guard for outgoing webhook and Slack URLs.
//!
//! A URL is accepted only if it is `https` (or `http` to a loopback address when the
//! development setting allows it), and every address its host resolves to is public: not
//! loopback, private, link-local (169.254.169.254, the cloud metadata service, included),
//! unique-local, CGNAT, unspecified, multicast, broadcast, documentation or an IPv4-mapped/
//! compatible form of those, unless the host name or the address is allow-listed. Link-local
//! addresses (the metadata service) are refused even when allow-listed.
//!
//! The check resolves the name once and [`CheckedUrl::client`] pins the connection to the
//! address that was checked (`reqwest::ClientBuilder::resolve`), so a DNS answer that changes
//! between the check and the connect (DNS rebinding) cannot redirect the request. Redirects
//! and proxies are disabled for the same reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use url::{Host, Url};

/// What the guard lets through besides public https URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Development only: allow `http://` (and https) to loopback addresses.
    pub allow_http_loopback: bool,
    /// Host names or IP addresses that may resolve to non-public addresses (an internal
    /// receiver). Matched exactly (case-insensitive, trailing dot ignored).
    pub allow_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("scheme {0:?} is not allowed: use https")]
    Scheme(String),
    #[error("http is only allowed to loopback addresses with the loopback development setting")]
    PlainHttp,
    #[error("URLs with a user name or password are not allowed")]
    Credentials,
    #[error("host {host} cannot be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("host {host} resolves to {addr}, a {class} address, which is refused")]
    Forbidden {
        host: String,
        addr: IpAddr,
        class: &'static str,
    },
}

/// A URL that passed the guard, with the address the connection must use.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    pub url: Url,
    pub addr: SocketAddr,
}

impl CheckedUrl {
    /// An HTTP client that connects only to the checked address, follows no redirects and
    /// uses no proxy.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("classy-sync/", env!("CARGO_PKG_VERSION")));
        if let Some(Host::Domain(d)) = self.url.host() {
            b = b.resolve(d, self.addr);
        }
        b.build()
    }
}

/// Why an address is not public, or `None` if it is.
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible) reach IPv4 hosts.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_class(v4).map(|_| "IPv4-mapped non-public");
            }
            let seg = v6.segments();
            if seg[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                let v4 = Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                );
                return v4_class(v4).map(|_| "IPv4-compatible non-public");
            }
            v6_class(v6)
        }
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (metadata)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("CGNAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else if ip.is_documentation() || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        Some("documentation/benchmark")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol")
    } else {
        None
    }
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s0 = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (s0 & 0xfe00) == 0xfc00 {
        Some("unique-local")
    } else if (s0 & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (s0 & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if s0 == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("documentation")
    } else if s0 == 0x0064 && ip.segments()[1] == 0xff9b {
        // NAT64 embeds an IPv4 address; refuse rather than decode every prefix length.
        Some("NAT64")
    } else {
        None
    }
}

/// Link-local (169.254.0.0/16, where cloud metadata services answer, and fe80::/10), also in
/// IPv4-mapped or -compatible form: never reachable, whatever an allow list says.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_link_local();
            }
            if seg[..6] == [0, 0, 0, 0, 0, 0] && seg[6] == 0xa9fe {
                return true;
            }
            (seg[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Checks one allow-list entry: an address there must not be link-local (a host name that
/// resolves to one is refused when a URL is checked).
pub fn check_allow_entry(entry: &str) -> Result<(), UrlError> {
    let host = normalize(entry);
    if host.is_empty() {
        return Err(UrlError::Invalid("empty allow-list entry".into()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if is_link_local(ip) {
            return Err(UrlError::Forbidden {
                host,
                addr: ip,
                class: "link-local (metadata)",
            });
        }
    }
    Ok(())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

fn normalize(host: &str) -> String {
    host.trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl UrlPolicy {
    fn allowed(&self, host: &str, addr: IpAddr) -> bool {
        let host = normalize(host);
        self.allow_list.iter().any(|a| {
            let a = normalize(a);
            a == host || a.parse::<IpAddr>().is_ok_and(|ip| ip == addr)
        })
    }

    /// Parses `raw`, resolves its host and checks every address. Never echoes the URL itself
    /// in an error (webhook URLs are secrets), only its host.
    pub async fn check(&self, raw: &str) -> Result<CheckedUrl, UrlError> {
        let url = Url::parse(raw.trim()).map_err(|e| UrlError::Invalid(e.to_string()))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(UrlError::Scheme(other.to_owned())),
        };
        if !https && !self.allow_http_loopback {
            return Err(UrlError::PlainHttp);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::Credentials);
        }
        let host = url
            .host_str()
            .ok_or_else(|| UrlError::Invalid("no host".into()))?
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| UrlError::Invalid("no port".into()))?;
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            _ => tokio::net::lookup_host((normalize(&host).as_str(), port))
                .await
                .map_err(|e| UrlError::Unresolvable {
                    host: host.clone(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(UrlError::Unresolvable {
                host,
                reason: "no addresses".into(),
            });
        }
        // Every address must pass: the resolver could hand any of them to a later connect.
        for a in &addrs {
            let ip = a.ip();
            let loopback_ok = self.allow_http_loopback && is_loopback(ip);
            if is_link_local(ip) {
                return Err(UrlError::Forbidden {
                    host,
                    addr: ip,
                    class: "link-local (metadata)",
                });
            }
            if !https && !is_loopback(ip) {
                return Err(UrlError::PlainHttp);
            }
            if loopback_ok || self.allowed(&host, ip) {
                continue;
            }
            if let Some(class) = forbidden_class(ip) {
                return Err(UrlError::Forbidden {
                    host,
                    addr: ip,
                    class,
                });
            }
        }
        Ok(CheckedUrl {
            url,
            addr: addrs[0],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classes() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(forbidden_class(ip(bad)).is_some(), "{bad} must be refused");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(forbidden_class(ip(good)), None, "{good} is public");
        }
    }

    #[tokio::test]
    async fn metadata_addresses_are_refused_even_when_allow_listed() {
        for (url, entry) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("https://169.254.169.254/", "169.254.169.254"),
            ("https://[fe80::1]/", "fe80::1"),
            (
                "https://[::ffff:169.254.169.254]/",
                "::ffff:169.254.169.254",
            ),
        ] {
            let policy = UrlPolicy {
                allow_http_loopback: true,
                allow_list: vec![entry.into()],
            };
            let e = policy.check(url).await.unwrap_err();
            assert!(
                matches!(
                    e,
                    UrlError::Forbidden {
                        class: "link-local (metadata)",
                        ..
                    }
                ),
                "{url}: {e:?}"
            );
            assert!(check_allow_entry(entry).is_err(), "{entry}");
        }
        // Other private addresses stay allow-listable (an internal receiver).
        let policy = UrlPolicy {
            allow_http_loopback: false,
            allow_list: vec!["10.1.2.3".into()],
        };
        assert!(policy.check("https://10.1.2.3/hook").await.is_ok());
        assert!(check_allow_entry("10.1.2.3").is_ok());
        assert!(check_allow_entry("hooks.internal.example").is_ok());
    }
}
