//! Webhook endpoints: each belongs to an organization and receives only its events (CA staff
//! may make one for any organization, or for every event).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use mandate_config::WebhookConfig;
use mandate_store::{AuditEvent, Role, Store, WEBHOOK_EVENT_TYPES, WebhookRow};
use serde_json::json;

use super::{Principal, tenant};
use crate::CaError;

/// Who may make and disable endpoints.
pub const MANAGERS: &[Role] = super::roles::WEBHOOK_MANAGERS;
const MAX_URL_LEN: usize = 2048;

/// An endpoint to make.
#[derive(Debug)]
pub struct NewWebhook {
    /// Where to POST.
    pub url: String,
    /// Event types, or `["*"]` (default).
    pub events: Option<Vec<String>>,
    /// The organization whose events it receives (default: the caller's).
    pub operator: Option<String>,
}

/// How long registration waits for a receiver's name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an operator can do about a refused address (in every refusal, so it names the way out).
const PRIVATE_HINT: &str = "webhook receivers must be public (set webhooks.allow_private_addresses = true for on-premise receivers)";

/// Why a receiver's host may not be used: the rule it breaks, in words, or a name that does not
/// resolve.
#[derive(Debug, thiserror::Error)]
pub enum HostRefused {
    /// The host is, or resolves to, an address that is not public (or is a `localhost` name).
    #[error("{0}")]
    NotPublic(String),
    /// The name gave no address (or none in time).
    #[error("{0}")]
    Unresolved(String),
}

/// The rule that keeps `ip` from receiving webhooks ("a loopback address", …), or `None` when
/// it is a public address.
///
/// Deliberately a deny list of every special-purpose range that is not globally reachable
/// (IANA special-purpose registries), with IPv6 forms that embed an IPv4 address judged by that
/// address: `::ffff:127.0.0.1` reaches the loopback interface like `127.0.0.1`.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified address (0.0.0.0/8)",
        (127, _, _) => "a loopback address",
        (10, _, _) | (192, 168, _) => "a private address",
        (172, 16..=31, _) => "a private address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol assignment address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        _ if ip.is_broadcast() => "the broadcast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let embedded = |hi: usize| {
        let [a, b] = seg[hi].to_be_bytes();
        let [c, d] = seg[hi + 1].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    Some(match seg {
        // IPv4-compatible (::a.b.c.d, deprecated): judged by the IPv4 address, never public.
        [0, 0, 0, 0, 0, 0, _, _] => {
            non_public_v4(embedded(6)).unwrap_or("a deprecated IPv4-compatible address")
        }
        // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => return non_public_v4(embedded(6)),
        [0x2002, ..] => return non_public_v4(embedded(1)),
        [0x0100, 0, 0, 0, ..] => "a discard-only address",
        [0x2001, 0x0db8, ..] => "a documentation address",
        [0x3fff, s, ..] if s & 0xf000 == 0 => "a documentation address",
        [s, ..] if s & 0xffc0 == 0xfe80 => "a link-local address",
        [s, ..] if s & 0xffc0 == 0xfec0 => "a site-local address",
        [s, ..] if s & 0xfe00 == 0xfc00 => "a unique-local (private) address",
        [s, ..] if s & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// The address rules that need no DNS, on a parsed URL: an IP-literal host must be public, and
/// `localhost` names (RFC 6761: always loopback) are refused. Returns the name still to resolve,
/// `None` for an IP literal.
pub(crate) fn check_host(url: &reqwest::Url) -> Result<Option<&str>, HostRefused> {
    let host = url.host_str().unwrap_or_default();
    // The URL parser has already turned every IPv4 spelling (`2130706433`, `0x7f.1`) into its
    // dotted form and bracketed IPv6, so these two parses see every literal.
    let literal = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    };
    if let Some(ip) = literal {
        return match non_public(ip) {
            Some(rule) => Err(HostRefused::NotPublic(format!("{ip} is {rule}"))),
            None => Ok(None),
        };
    }
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(HostRefused::NotPublic(format!(
            "{host} is a localhost name (a loopback address)"
        )));
    }
    Ok(Some(host))
}

/// Resolves a receiver's name; unless `allow_private`, refuses it when **any** of its addresses
/// is not public (one inward address is enough for a connection to land there). The port of
/// the addresses is 0: the caller's URL says which.
pub(crate) async fn resolve_host(
    name: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, HostRefused> {
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, 0))).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(e)) => {
                return Err(HostRefused::Unresolved(format!(
                    "{name} does not resolve ({e})"
                )));
            }
            Err(_) => {
                return Err(HostRefused::Unresolved(format!(
                    "{name} did not resolve within {} s",
                    RESOLVE_TIMEOUT.as_secs()
                )));
            }
        };
    if addrs.is_empty() {
        return Err(HostRefused::Unresolved(format!(
            "{name} does not resolve (no address)"
        )));
    }
    if !allow_private
        && let Some((ip, rule)) = addrs
            .iter()
            .find_map(|a| non_public(a.ip()).map(|rule| (a.ip(), rule)))
    {
        return Err(HostRefused::NotPublic(format!(
            "{name} resolves to {ip}, {rule}"
        )));
    }
    Ok(addrs)
}

/// The rules of an endpoint URL, checked at registration: scheme, form, no userinfo, and,
/// unless private addresses are allowed, a public receiver (for a name: all the addresses it
/// resolves to now; delivery checks again, after each resolution).
async fn check_url(url: &str, cfg: &WebhookConfig) -> Result<(), CaError> {
    let ok_scheme = url.starts_with("https://") || (cfg.allow_http && url.starts_with("http://"));
    let plain = url.len() <= MAX_URL_LEN
        && url.bytes().all(|b| b.is_ascii_graphic())
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) if ok_scheme && plain && parsed.host_str().is_some() => parsed,
        _ => {
            return Err(CaError::InvalidRequest(format!(
                "url must be an {} URL of printable ASCII, at most {MAX_URL_LEN} characters",
                if cfg.allow_http {
                    "http:// or https://"
                } else {
                    "https:// (http:// only while webhooks.allow_http = true)"
                }
            )));
        }
    };
    // Credentials in the URL would be stored, listed and logged in clear; the signature is
    // how a receiver knows a delivery is ours.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(CaError::InvalidRequest(
            "url: a user name or password (user:pass@) is not accepted; receivers authenticate deliveries by their signature".into(),
        ));
    }
    if cfg.allow_private_addresses {
        return Ok(());
    }
    let refused = |e: HostRefused| match e {
        HostRefused::NotPublic(why) => {
            CaError::InvalidRequest(format!("url: {why}; {PRIVATE_HINT}"))
        }
        HostRefused::Unresolved(why) => CaError::InvalidRequest(format!(
            "url: {why}; a receiver's name must resolve when it is registered, so that its addresses can be checked"
        )),
    };
    if let Some(name) = check_host(&parsed).map_err(refused)? {
        resolve_host(name, false).await.map_err(refused)?;
    }
    Ok(())
}

/// Makes an endpoint; returns it with its HMAC secret (shown once).
pub async fn create(
    node: &crate::node::Node,
    p: &Principal,
    req: NewWebhook,
) -> Result<(WebhookRow, String), CaError> {
    p.require(MANAGERS)?;
    check_url(&req.url, &node.cfg.webhooks).await?;
    let events = req.events.unwrap_or_else(|| vec!["*".to_owned()]);
    if events.is_empty() || events.len() > WEBHOOK_EVENT_TYPES.len() {
        return Err(CaError::InvalidRequest(
            "events: 1 or more event types, or [\"*\"]".into(),
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| *e != "*" && !WEBHOOK_EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(CaError::InvalidRequest(format!(
            "unknown event type {bad:?}; use \"*\" or some of {}",
            WEBHOOK_EVENT_TYPES.join(", ")
        )));
    }
    let operator = match (&p.organization, req.operator) {
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(op)) if *own == op => Some(op),
        (Some(_), Some(op)) => return Err(CaError::NotFound(format!("organization {op}"))),
        (None, Some(op)) => {
            tenant::organization(&node.store, p, &op).await?;
            Some(op)
        }
        (None, None) => None,
    };
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    let row = WebhookRow {
        id: format!("wh_{}", hex::encode(random)),
        url: req.url,
        events,
        operator,
        created_by: p.key_id.clone(),
        created_at: mandate_store::now_unix(),
        disabled_at: None,
    };
    let secret = crate::webhooks::secret(&node.hsm, &node.store, &row.id).await?;
    let mut details = json!({"url": row.url, "events": row.events, "operator": row.operator});
    details["by"] = p.audit_details();
    node.store
        .create_webhook(
            &row,
            &AuditEvent::new(&p.key_id, "webhook.created", &row.id, details),
        )
        .await?;
    tracing::info!(webhook = %row.id, url = %row.url, "webhook endpoint created");
    Ok((row, secret))
}

/// Disables an endpoint of the caller's organization; returns it.
pub async fn disable(store: &Store, p: &Principal, id: &str) -> Result<WebhookRow, CaError> {
    p.require(MANAGERS)?;
    tenant::webhook(store, p, id).await?;
    let mut details = json!({});
    details["by"] = p.audit_details();
    store
        .disable_webhook(
            id,
            &AuditEvent::new(&p.key_id, "webhook.disabled", id, details),
        )
        .await?;
    tenant::webhook(store, p, id).await
}

/// Delivers a delivery again (operator, admin; the endpoint must be the caller's
/// organization's, 404 otherwise): after the receiver was fixed, without waiting for a new
/// event. The delivery as it now stands.
pub async fn redeliver(
    store: &Store,
    p: &Principal,
    webhook_id: &str,
    delivery_id: i64,
) -> Result<mandate_store::DeliveryRow, CaError> {
    p.require(MANAGERS)?;
    tenant::webhook(store, p, webhook_id).await?;
    let mut details = json!({"delivery_id": delivery_id});
    details["by"] = p.audit_details();
    store
        .redeliver(
            webhook_id,
            delivery_id,
            &AuditEvent::new(&p.key_id, "webhook.redelivered", webhook_id, details),
        )
        .await?;
    store
        .webhook_deliveries(webhook_id, delivery_id + 1, 1)
        .await?
        .into_iter()
        .find(|d| d.id == delivery_id)
        .ok_or_else(|| CaError::NotFound(format!("delivery {delivery_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ip: &str) -> Option<&'static str> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn every_non_public_range_is_named_and_public_addresses_pass() {
        for (ip, expected) in [
            ("127.0.0.1", "a loopback address"),
            ("127.255.0.9", "a loopback address"),
            ("0.0.0.0", "an unspecified address (0.0.0.0/8)"),
            ("0.1.2.3", "an unspecified address (0.0.0.0/8)"),
            ("10.1.2.3", "a private address"),
            ("172.16.0.1", "a private address"),
            ("172.31.255.255", "a private address"),
            ("192.168.1.1", "a private address"),
            ("100.64.0.1", "a shared (carrier-grade NAT) address"),
            ("100.127.255.254", "a shared (carrier-grade NAT) address"),
            ("169.254.169.254", "a link-local address"),
            ("192.0.0.8", "an IETF protocol assignment address"),
            ("192.0.2.1", "a documentation address"),
            ("198.51.100.7", "a documentation address"),
            ("203.0.113.9", "a documentation address"),
            ("198.18.0.1", "a benchmarking address"),
            ("224.0.0.1", "a multicast address"),
            ("239.255.255.250", "a multicast address"),
            ("255.255.255.255", "the broadcast address"),
            ("240.0.0.1", "a reserved address"),
            ("::", "an unspecified address"),
            ("::1", "a loopback address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("::ffff:10.0.0.1", "a private address"),
            ("::ffff:169.254.169.254", "a link-local address"),
            ("::127.0.0.1", "a loopback address"),
            ("::8.8.8.8", "a deprecated IPv4-compatible address"),
            ("64:ff9b::7f00:1", "a loopback address"),
            ("2002:c0a8:101::1", "a private address"),
            ("fe80::1", "a link-local address"),
            ("febf::1", "a link-local address"),
            ("fec0::1", "a site-local address"),
            ("fc00::1", "a unique-local (private) address"),
            ("fd12:3456::1", "a unique-local (private) address"),
            ("ff02::1", "a multicast address"),
            ("2001:db8::1", "a documentation address"),
            ("3fff:fff::1", "a documentation address"),
            ("100::1", "a discard-only address"),
        ] {
            assert_eq!(rule(ip), Some(expected), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "3fff:1000::1",
        ] {
            assert_eq!(rule(ip), None, "{ip}");
        }
    }

    fn host_rule(url: &str) -> Result<Option<String>, String> {
        let url = reqwest::Url::parse(url).unwrap();
        check_host(&url)
            .map(|h| h.map(str::to_owned))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn literals_are_judged_in_every_spelling_and_localhost_names_are_refused() {
        for (url, why) in [
            ("https://127.0.0.1/x", "127.0.0.1 is a loopback address"),
            ("http://127.0.0.1:8080/", "127.0.0.1 is a loopback address"),
            // Decimal, hex and short IPv4 forms are parsed to the same address.
            ("https://2130706433/", "127.0.0.1 is a loopback address"),
            ("https://0x7f.1/", "127.0.0.1 is a loopback address"),
            ("https://[::1]/", "::1 is a loopback address"),
            (
                "https://[::ffff:127.0.0.1]/",
                "::ffff:127.0.0.1 is a loopback address",
            ),
            ("https://10.1.2.3/", "10.1.2.3 is a private address"),
            ("https://localhost/", "localhost is a localhost name"),
            ("https://LOCALHOST./", "localhost. is a localhost name"),
            (
                "https://api.localhost/",
                "api.localhost is a localhost name",
            ),
        ] {
            let got = host_rule(url).unwrap_err();
            assert!(got.starts_with(why), "{url}: {got}");
        }
        assert_eq!(host_rule("https://8.8.8.8/"), Ok(None));
        assert_eq!(
            host_rule("https://hooks.example.com/x"),
            Ok(Some("hooks.example.com".into()))
        );
        assert_eq!(
            host_rule("https://localhost.example.com/"),
            Ok(Some("localhost.example.com".into()))
        );
    }

    #[tokio::test]
    async fn a_name_resolving_inward_is_refused_unless_allowed() {
        // `localhost` resolves to loopback everywhere, without a DNS server.
        let refused = resolve_host("localhost", false).await.unwrap_err();
        assert!(matches!(refused, HostRefused::NotPublic(_)), "{refused}");
        assert!(
            refused.to_string().contains("resolves to") && refused.to_string().contains("loopback"),
            "{refused}"
        );
        let addrs = resolve_host("localhost", true).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        let unresolved = resolve_host("no-such-host.invalid", false)
            .await
            .unwrap_err();
        assert!(
            matches!(unresolved, HostRefused::Unresolved(_)),
            "{unresolved}"
        );
    }

    #[tokio::test]
    async fn registration_refusals_name_their_rule() {
        let cfg = WebhookConfig::default();
        let detail = |r: Result<(), CaError>| match r {
            Err(CaError::InvalidRequest(d)) => d,
            other => panic!("{other:?}"),
        };
        let d = detail(check_url("http://hooks.example.com/", &cfg).await);
        assert!(d.contains("https://"), "{d}");
        let d = detail(check_url("https://127.0.0.1/", &cfg).await);
        assert_eq!(
            d,
            "url: 127.0.0.1 is a loopback address; webhook receivers must be public (set webhooks.allow_private_addresses = true for on-premise receivers)"
        );
        let d = detail(check_url("https://user:pw@hooks.example.com/", &cfg).await);
        assert!(d.contains("user:pass@"), "{d}");
        let d = detail(check_url("https://no-such-host.invalid/", &cfg).await);
        assert!(d.contains("does not resolve"), "{d}");
        let open = WebhookConfig {
            allow_http: true,
            allow_private_addresses: true,
            ..WebhookConfig::default()
        };
        check_url("http://127.0.0.1:9/hook", &open).await.unwrap();
        check_url("https://localhost/", &open).await.unwrap();
        // Userinfo stays refused: it is not an address rule.
        detail(check_url("http://u@127.0.0.1/", &open).await);
    }
}
