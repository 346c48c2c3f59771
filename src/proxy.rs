//! The real client address behind reverse proxies (`--trusted-proxies`).
//!
//! Only when the connection comes from a trusted proxy are `Forwarded` (RFC 7239) or, when the
//! proxy sends no `Forwarded`, `X-Forwarded-For` read: the client is the right-most hop that is
//! not itself a trusted proxy (everything left of it was written by someone Quire does not
//! trust). The scheme comes from the same hop's `proto=` or from `X-Forwarded-Proto`. From any
//! other peer those headers are ignored, so nobody can choose the address their limits are kept
//! under by sending a header.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, header};
use ipnet::IpNet;

/// The networks whose connections may say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR blocks: `10.0.0.0/8, 192.0.2.7, fd00::/8`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(canonical(ip)),
                    Err(_) => {
                        return Err(format!(
                            "{item:?} is not an address or a CIDR block (such as 10.0.0.0/8, 192.0.2.7 or fd00::/8)"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Who sent the request, as far as Quire can tell, and whether they reached the wiki over
/// https. In every request's extensions (put there by the outermost layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    pub ip: Option<IpAddr>,
    /// The client's own connection was https (a trusted proxy said so).
    pub https: bool,
}

/// One hop a proxy recorded: the address it saw (`None`: unknown, obfuscated or unreadable)
/// and the scheme that address used, when it said.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hop {
    addr: Option<IpAddr>,
    https: Option<bool>,
}

/// The client of a request that came from `peer`.
pub fn client_of(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> ClientAddr {
    let Some(peer) = peer.map(canonical) else {
        return ClientAddr { ip: None, https: false };
    };
    if !trusted.trusts(peer) {
        return ClientAddr { ip: Some(peer), https: false };
    }
    let hops = hops(headers);
    let Some(last) = hops.len().checked_sub(1) else {
        return ClientAddr { ip: Some(peer), https: false };
    };
    let mut client = peer;
    let mut at = last;
    for (i, hop) in hops.iter().enumerate().rev() {
        // A hop that names no address ends the walk: the proxy that wrote it is the client
        // as far as anyone trusted can tell.
        let Some(addr) = hop.addr else { break };
        client = canonical(addr);
        at = i;
        if !trusted.trusts(client) {
            break;
        }
    }
    ClientAddr { ip: Some(client), https: hops[at].https.unwrap_or(false) }
}

/// The hops of `Forwarded` when the request carries one, else of `X-Forwarded-For` with
/// `X-Forwarded-Proto`, left to right.
fn hops(headers: &HeaderMap) -> Vec<Hop> {
    if headers.contains_key(header::FORWARDED) {
        return headers.get_all(header::FORWARDED).iter().flat_map(forwarded_hops).collect();
    }
    let addrs: Vec<Option<IpAddr>> = list(headers, "x-forwarded-for").iter().map(|a| parse_addr(a)).collect();
    let protos: Vec<bool> =
        list(headers, "x-forwarded-proto").iter().map(|p| p.eq_ignore_ascii_case("https")).collect();
    // Each proxy appends the address it saw and the scheme it was reached by: when the lists
    // are as long as each other they pair up; otherwise the nearest proxy's scheme holds.
    let paired = protos.len() == addrs.len();
    let nearest = protos.last().copied();
    addrs
        .into_iter()
        .enumerate()
        .map(|(i, addr)| Hop { addr, https: if paired { Some(protos[i]) } else { nearest } })
        .collect()
}

/// The comma-separated values of every instance of a header, in order.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The elements of one `Forwarded` value: `for=…;proto=…, for=…`, values maybe quoted.
fn forwarded_hops(value: &HeaderValue) -> Vec<Hop> {
    let Ok(text) = value.to_str() else {
        // Unreadable: one hop that names nobody, so nothing left of it is believed.
        return vec![Hop { addr: None, https: None }];
    };
    split_outside_quotes(text, ',')
        .into_iter()
        .map(|element| {
            let mut hop = Hop { addr: None, https: None };
            for pair in split_outside_quotes(element, ';') {
                let Some((key, value)) = pair.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.addr = parse_addr(value),
                    "proto" => hop.https = Some(value.eq_ignore_ascii_case("https")),
                    _ => {}
                }
            }
            hop
        })
        .collect()
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(text[start..i].trim());
            start = i + 1;
        }
    }
    parts.push(text[start..].trim());
    parts.into_iter().filter(|part| !part.is_empty()).collect()
}

/// `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`;
/// anything else (`unknown`, `_hidden`) names nobody.
fn parse_addr(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok()
}

/// Adds `Secure` to every cookie a response sets without it (the client came over https
/// through a trusted proxy).
pub fn mark_cookies_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secure = cookie
            .to_str()
            .map(|text| text.split(';').skip(1).any(|attr| attr.trim().eq_ignore_ascii_case("secure")))
            .unwrap_or(true);
        let value = if secure {
            cookie
        } else {
            let mut bytes = cookie.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Secure");
            HeaderValue::from_bytes(&bytes).unwrap_or(cookie)
        };
        headers.append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(text: &str) -> TrustedProxies {
        TrustedProxies::parse(text).unwrap()
    }

    fn client(peer: &str, trusted_list: &str, headers: &[(&str, &str)]) -> ClientAddr {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        client_of(Some(peer.parse().unwrap()), &map, &trusted(trusted_list))
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn lists_parse_and_bad_items_are_refused() {
        let list = trusted(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8,");
        assert!(list.trusts("10.1.2.3".parse().unwrap()));
        assert!(list.trusts("192.0.2.7".parse().unwrap()));
        assert!(list.trusts("::ffff:192.0.2.7".parse().unwrap()));
        assert!(!list.trusts("192.0.2.8".parse().unwrap()));
        assert!(list.trusts("fd00::1".parse().unwrap()));
        assert_eq!(list.to_string(), "10.0.0.0/8,192.0.2.7/32,fd00::/8");
        assert!(trusted("").is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("localhost").is_err());
        // A block written with host bits set is the block.
        assert!(trusted("10.1.2.3/8").trusts("10.200.0.1".parse().unwrap()));
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let got =
            client("203.0.113.5", "", &[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https")]);
        assert_eq!(got, ClientAddr { ip: ip("203.0.113.5"), https: false });
        let got = client("203.0.113.5", "10.0.0.0/8", &[("forwarded", "for=1.2.3.4;proto=https")]);
        assert_eq!(got, ClientAddr { ip: ip("203.0.113.5"), https: false });
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let headers =
            [("x-forwarded-for", "6.6.6.6, 198.51.100.1, 10.0.0.3"), ("x-forwarded-proto", "https")];
        let got = client("10.0.0.2", "10.0.0.0/8", &headers);
        assert_eq!(got, ClientAddr { ip: ip("198.51.100.1"), https: true });
        // Several headers read as one list.
        let got = client(
            "10.0.0.2",
            "10.0.0.0/8",
            &[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.1:5555")],
        );
        assert_eq!(got.ip, ip("198.51.100.1"));
        // Every hop trusted: the left-most.
        assert_eq!(
            client("10.0.0.2", "10.0.0.0/8", &[("x-forwarded-for", "10.9.9.9, 10.0.0.3")]).ip,
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(client("10.0.0.2", "10.0.0.0/8", &[]).ip, ip("10.0.0.2"));
        // A hop naming nobody stops the walk at the proxy that wrote it.
        assert_eq!(
            client("10.0.0.2", "10.0.0.0/8", &[("x-forwarded-for", "1.1.1.1, unknown, 10.0.0.3")]).ip,
            ip("10.0.0.3")
        );
    }

    #[test]
    fn schemes_pair_with_their_hops() {
        let headers = [("x-forwarded-for", "198.51.100.1, 10.0.0.3"), ("x-forwarded-proto", "https, http")];
        assert!(client("10.0.0.2", "10.0.0.0/8", &headers).https);
        let headers = [("x-forwarded-for", "198.51.100.1"), ("x-forwarded-proto", "http")];
        assert!(!client("10.0.0.2", "10.0.0.0/8", &headers).https);
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for() {
        let headers = [
            ("forwarded", "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https;by=10.0.0.2"),
            ("x-forwarded-for", "7.7.7.7"),
        ];
        let got = client("10.0.0.2", "10.0.0.0/8", &headers);
        assert_eq!(got, ClientAddr { ip: ip("2001:db8:cafe::17"), https: true });
        let got = client("10.0.0.2", "10.0.0.0/8", &[("forwarded", "for=_hidden;proto=https")]);
        assert_eq!(got, ClientAddr { ip: ip("10.0.0.2"), https: true });
        let got = client("10.0.0.2", "10.0.0.0/8", &[("forwarded", "For=\"192.0.2.60\";Proto=http")]);
        assert_eq!(got, ClientAddr { ip: ip("192.0.2.60"), https: false });
    }

    #[test]
    fn cookies_are_marked_secure_once() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/; HttpOnly"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2; Secure; Path=/"));
        mark_cookies_secure(&mut headers);
        let values: Vec<&str> =
            headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(values, ["a=1; Path=/; HttpOnly; Secure", "b=2; Secure; Path=/"]);
    }
}
