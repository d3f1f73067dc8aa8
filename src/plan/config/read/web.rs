//! `web:`: the embedded status pages and confirmation links (off unless `listen` is set).

use super::*;
use crate::plan::yaml::Node;
use std::net::SocketAddr;

const WEB_KEYS: &[&str] = &["listen", "base_url", "link_key_file", "link_days", "allow"];

impl Reader<'_> {
    pub(super) fn web(&self, node: Option<&Node>) -> WebConfig {
        let mut web = WebConfig {
            generated_key: self.state_path("link-key"),
            ..WebConfig::default()
        };
        let Some(node) = node else { return web };
        let Some(m) = self.map(node, "`web`", WEB_KEYS) else {
            return web;
        };
        if let Some(n) = m.get("listen")
            && let Some(s) = self.text(n, "`listen`")
        {
            match s.trim().parse::<SocketAddr>() {
                Ok(a) => web.listen = Some(a),
                Err(_) => self.error(
                    n.pos,
                    format!("`listen` `{s}` is not an address and port"),
                    "write e.g. `127.0.0.1:8080` (or `[::1]:8080`)",
                ),
            }
        }
        if let Some(n) = m.get("base_url")
            && let Some(s) = self.text(n, "`base_url`")
        {
            let s = s.trim().trim_end_matches('/');
            let ok = (s.starts_with("https://") || s.starts_with("http://"))
                && s.len() > "https://".len()
                && s.is_ascii()
                && !s.chars().any(|c| c.is_whitespace() || c == '?' || c == '#');
            if ok {
                web.base_url = Some(s.to_string());
            } else {
                self.error(
                    n.pos,
                    format!("`base_url` `{s}` is not an http(s) address"),
                    "write the address the offices open, e.g. `https://nhacviec.vpubnd.example` (punycode for a Vietnamese domain)",
                );
            }
        }
        web.link_key_file = self.opt_text(&m, "link_key_file").map(|p| self.resolve(&p));
        if let Some(n) = self.opt_checked(&m, "link_days", |d: u32| match d {
            1..=366 => Ok(d),
            _ => Err(Problem::new(
                format!("`link_days` {d} is out of range"),
                "a link stays valid 1 to 366 days",
            )),
        }) {
            web.link_days = n;
        }
        if let Some(n) = m.get("allow") {
            for (s, pos) in self.texts(n, "`allow`") {
                match s.parse::<Network>() {
                    Ok(net) => web.allow.push(net),
                    Err(e) => self.error(
                        pos,
                        format!("`allow` `{s}`: {e}"),
                        "write a network as `10.0.0.0/8` or an address as `192.0.2.7`",
                    ),
                }
            }
        }
        if let Some(a) = web.listen
            && !a.ip().is_loopback()
            && web.allow.is_empty()
        {
            self.error(
                m.get("listen").map_or(m.pos, |n| n.pos),
                format!("`listen` {a} is reachable beyond this machine, and no `allow:` says who may read the pages"),
                "listen on 127.0.0.1 behind the office's nginx (see the README), or list the client networks under `allow:`",
            );
        }
        web
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::config::tests::load_str;

    const BASE: &str = "offices:\n  hctc:\n    name: HC\n    email: hctc@vpubnd.example\ntasks:\n  - id: I.1\n    title: T\n    deadline: 30/06/2024\n    lead: hctc\n";

    #[test]
    fn web_reads_its_keys_and_refuses_an_open_listener_without_allow() {
        let ok = load_str(&format!(
            "{BASE}web:\n  listen: 127.0.0.1:8080\n  base_url: https://nhacviec.vpubnd.example/\n  link_days: 30\n  allow: [10.1.0.0/16, 192.0.2.7]\n"
        ))
        .unwrap_or_else(|r| panic!("{}", r.render()));
        let w = ok.config.web;
        assert_eq!(w.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(
            w.base_url.as_deref(),
            Some("https://nhacviec.vpubnd.example")
        );
        assert_eq!(w.link_days, 30);
        assert!(w.allow[0].contains("10.1.200.3".parse().unwrap()));
        assert!(!w.allow[0].contains("10.2.0.1".parse().unwrap()));
        assert!(w.allow[1].contains("::ffff:192.0.2.7".parse().unwrap()));
        let Err(report) = load_str(&format!(
            "{BASE}web:\n  listen: 0.0.0.0:8080\n  base_url: nhacviec.example\n  allow: 10.0.0.0/40\n"
        )) else {
            panic!("a listener open to all without `allow:` is an error");
        };
        let bad = report.render();
        assert!(bad.contains("`base_url`"), "{bad}");
        assert!(bad.contains("prefix length"), "{bad}");
        assert!(bad.contains("no `allow:`"), "{bad}");
        let none = load_str(BASE).unwrap().config.web;
        assert_eq!((none.listen, none.base_url), (None, None));
    }
}
