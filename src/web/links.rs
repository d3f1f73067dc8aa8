//! Confirmation links: a token is an HMAC-SHA256, under the link key, over (office, task,
//! occurrence, expiry). Calendar feed links (`/ics/office/ID.ics?token=…`): an HMAC over
//! ("ics", office) with the same key, without expiry (a subscription must keep working);
//! rotating the key revokes them all. The key comes from the systemd credential `link-key`, else
//! `web.link_key_file`, else a random key created once (mode 0600) in the state
//! directory. It is never in the YAML and never logged.

use crate::delivery::email::ConfirmLinks;
use crate::plan::config::WebConfig;
use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// A key shorter than this is refused: it could be guessed.
const MIN_KEY: usize = 16;
/// Longer tokens are refused before any work.
pub const MAX_TOKEN: usize = 1024;

/// The link key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKey(Vec<u8>);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(…)")
    }
}

impl LinkKey {
    /// The key for `web` (see the module's doc); `credentials`: `$CREDENTIALS_DIRECTORY`.
    pub fn load(web: &WebConfig, credentials: Option<&Path>) -> Result<LinkKey> {
        match LinkKey::existing(web, credentials)? {
            Some(k) => Ok(k),
            None => create_key(&web.generated_key),
        }
    }

    /// The key if one exists already; creates nothing.
    pub fn existing(web: &WebConfig, credentials: Option<&Path>) -> Result<Option<LinkKey>> {
        if let Some(dir) = credentials {
            let p = dir.join("link-key");
            if p.is_file() {
                return read_key(&p).map(Some);
            }
        }
        if let Some(p) = &web.link_key_file {
            return read_key(p).map(Some);
        }
        let p = &web.generated_key;
        if p.is_file() {
            return read_key(p).map(Some);
        }
        Ok(None)
    }

    /// A random key that lives in memory only (a dry run's links, never sent).
    pub fn throwaway() -> LinkKey {
        use rand::RngCore as _;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        LinkKey(raw.to_vec())
    }

    #[cfg(test)]
    pub fn from_bytes(b: &[u8]) -> LinkKey {
        LinkKey(b.to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }
}

fn read_key(p: &Path) -> Result<LinkKey> {
    let bytes = std::fs::read(p).with_context(|| {
        crate::tr!(
            "không đọc được khóa liên kết {}",
            "cannot read the link key {}",
            p.display()
        )
    })?;
    let trimmed = bytes.trim_ascii().to_vec();
    if trimmed.len() < MIN_KEY {
        bail!(crate::tr!(
            "khóa liên kết {} ngắn hơn {MIN_KEY} byte: hãy ghi một khóa ngẫu nhiên, ví dụ `head -c 32 /dev/urandom | base64 > {}`",
            "the link key {} is shorter than {MIN_KEY} bytes: write a random one, e.g. `head -c 32 /dev/urandom | base64 > {}`",
            p.display(),
            p.display()
        ));
    }
    Ok(LinkKey(trimmed))
}

fn create_key(p: &Path) -> Result<LinkKey> {
    use rand::RngCore as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let text = B64.encode(raw);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // create_new: two processes starting at once must not each write a different key.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write the link key {}", p.display()))?;
            tracing::info!(path = %p.display(), "đã tạo khóa liên kết ngẫu nhiên (created a random link key)");
            Ok(LinkKey(text.into_bytes()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(p),
        Err(e) => Err(e).with_context(|| format!("cannot create the link key {}", p.display())),
    }
}

/// What a token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub office: String,
    pub task: String,
    pub occurrence: NaiveDate,
    /// Unix seconds after which it is refused.
    pub expires: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a token at all.
    Malformed,
    /// The signature does not match: forged or altered.
    Forged,
    Expired,
}

fn payload(c: &Claim) -> Option<String> {
    let fields = [c.office.as_str(), c.task.as_str()];
    if fields.iter().any(|f| f.contains('\n')) {
        return None;
    }
    Some(format!(
        "v1\n{}\n{}\n{}\n{}",
        c.office,
        c.task,
        c.occurrence.format("%Y-%m-%d"),
        c.expires
    ))
}

/// The token for `c`: `base64url(payload).base64url(mac)`; `None` for ids with a line break.
pub fn sign(key: &LinkKey, c: &Claim) -> Option<String> {
    let p = payload(c)?;
    let mut mac = key.mac();
    mac.update(p.as_bytes());
    let tag = mac.finalize().into_bytes();
    Some(format!("{}.{}", B64.encode(p), B64.encode(tag)))
}

/// The claim of a token signed with `key`, checked at `now` (the MAC in constant time).
pub fn verify(key: &LinkKey, token: &str, now: DateTime<Utc>) -> Result<Claim, Refused> {
    if token.len() > MAX_TOKEN {
        return Err(Refused::Malformed);
    }
    let (p, t) = token.split_once('.').ok_or(Refused::Malformed)?;
    let p = B64.decode(p).map_err(|_| Refused::Malformed)?;
    let t = B64.decode(t).map_err(|_| Refused::Malformed)?;
    let mut mac = key.mac();
    mac.update(&p);
    mac.verify_slice(&t).map_err(|_| Refused::Forged)?;
    let text = String::from_utf8(p).map_err(|_| Refused::Malformed)?;
    let f: Vec<&str> = text.split('\n').collect();
    let [v, office, task, occ, exp] = f[..] else {
        return Err(Refused::Malformed);
    };
    if v != "v1" {
        return Err(Refused::Malformed);
    }
    let claim = Claim {
        office: office.to_string(),
        task: task.to_string(),
        occurrence: occ.parse().map_err(|_| Refused::Malformed)?,
        expires: exp.parse().map_err(|_| Refused::Malformed)?,
    };
    if now.timestamp() > claim.expires {
        return Err(Refused::Expired);
    }
    Ok(claim)
}

/// The signed text of an office's feed token; it cannot be read as a confirmation
/// token's payload (those start `v1`).
fn feed_payload(office: &str) -> String {
    format!("ics\n{office}")
}

/// The token of `office`'s calendar feed: `base64url(mac)`.
pub fn feed_token(key: &LinkKey, office: &str) -> String {
    let mut mac = key.mac();
    mac.update(feed_payload(office).as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Whether `token` is `office`'s feed token under `key` (the MAC in constant time):
/// another office's token is `Forged`.
pub fn verify_feed(key: &LinkKey, office: &str, token: &str) -> Result<(), Refused> {
    if token.len() > MAX_TOKEN {
        return Err(Refused::Malformed);
    }
    let tag = B64.decode(token).map_err(|_| Refused::Malformed)?;
    let mut mac = key.mac();
    mac.update(feed_payload(office).as_bytes());
    mac.verify_slice(&tag).map_err(|_| Refused::Forged)
}

/// The address of `office`'s calendar feed under `base_url`.
pub fn feed_url(key: &LinkKey, base_url: &str, office: &str) -> String {
    let id: String = url_escape(office);
    format!(
        "{}/ics/office/{id}.ics?token={}",
        base_url.trim_end_matches('/'),
        feed_token(key, office)
    )
}

/// Percent-encodes everything in a path segment but the unreserved characters (RFC 3986).
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The links an email carries: `base_url/confirm/TOKEN`, valid `days` after the email.
#[derive(Debug)]
pub struct Links {
    pub key: LinkKey,
    pub base_url: String,
    pub days: u32,
}

impl Links {
    /// The links for `web`, or `None` without `base_url` (then emails carry none).
    /// `create`: make the key when there is none yet; else (a dry run, which writes
    /// nothing) use a throwaway one.
    pub fn for_config(web: &WebConfig, create: bool) -> Result<Option<Links>> {
        let Some(base) = &web.base_url else {
            return Ok(None);
        };
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from);
        let key = if create {
            LinkKey::load(web, creds.as_deref())?
        } else {
            LinkKey::existing(web, creds.as_deref())?.unwrap_or_else(LinkKey::throwaway)
        };
        Ok(Some(Links {
            key,
            base_url: base.clone(),
            days: web.link_days,
        }))
    }
}

impl ConfirmLinks for Links {
    fn url(
        &self,
        office: &str,
        task: &str,
        occurrence: NaiveDate,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let claim = Claim {
            office: office.to_string(),
            task: task.to_string(),
            occurrence,
            expires: now.timestamp() + i64::from(self.days) * 86_400,
        };
        sign(&self.key, &claim).map(|t| format!("{}/confirm/{t}", self.base_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_link_key_is_explained_in_the_chosen_language() {
        use crate::i18n::{Lang, scoped};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("link.key");
        std::fs::write(&p, "ngan").unwrap();
        let vi = scoped(Lang::Vi, || format!("{:#}", read_key(&p).err().unwrap()));
        assert!(vi.contains("ngắn hơn") && vi.contains("link.key"), "{vi}");
        let en = scoped(Lang::En, || format!("{:#}", read_key(&p).err().unwrap()));
        assert!(en.contains("is shorter than"), "{en}");
    }

    fn claim() -> Claim {
        Claim {
            office: "kstthc".into(),
            task: "II.3".into(),
            occurrence: "2024-03-18".parse().unwrap(),
            expires: 2_000_000_000,
        }
    }

    #[test]
    fn a_token_verifies_and_every_alteration_is_refused() {
        let key = LinkKey::from_bytes(b"0123456789abcdef0123");
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let t = sign(&key, &claim()).unwrap();
        assert_eq!(verify(&key, &t, now), Ok(claim()));
        let other = LinkKey::from_bytes(b"another key, long enough");
        assert_eq!(verify(&other, &t, now), Err(Refused::Forged));
        let (p, mac) = t.split_once('.').unwrap();
        let mut c = claim();
        c.office = "hctc".into();
        let forged_payload = B64.encode(payload(&c).unwrap());
        assert_eq!(
            verify(&key, &format!("{forged_payload}.{mac}"), now),
            Err(Refused::Forged)
        );
        assert_eq!(verify(&key, p, now), Err(Refused::Malformed));
        assert_eq!(verify(&key, "x.y", now), Err(Refused::Malformed));
        let late = DateTime::from_timestamp(2_000_000_001, 0).unwrap();
        assert_eq!(verify(&key, &t, late), Err(Refused::Expired));
    }

    #[test]
    fn a_feed_token_opens_its_office_only_and_dies_with_the_key() {
        let key = LinkKey::from_bytes(b"0123456789abcdef0123");
        let t = feed_token(&key, "kstthc");
        assert_eq!(verify_feed(&key, "kstthc", &t), Ok(()));
        assert_eq!(verify_feed(&key, "hctc", &t), Err(Refused::Forged));
        let rotated = LinkKey::from_bytes(b"another key, long enough");
        assert_eq!(verify_feed(&rotated, "kstthc", &t), Err(Refused::Forged));
        assert_eq!(
            verify_feed(&key, "kstthc", "not base64!"),
            Err(Refused::Malformed)
        );
        // A confirmation token is no feed token, nor the other way round.
        let confirm = sign(&key, &claim()).unwrap();
        assert!(verify_feed(&key, "kstthc", &confirm).is_err());
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        assert!(verify(&key, &t, now).is_err());
        assert_eq!(
            feed_url(&key, "https://nv.example/", "a b"),
            format!(
                "https://nv.example/ics/office/a%20b.ics?token={}",
                feed_token(&key, "a b")
            )
        );
    }

    #[test]
    fn a_generated_key_is_created_once_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let web = WebConfig {
            generated_key: dir.path().join("state/link-key"),
            ..WebConfig::default()
        };
        let a = LinkKey::load(&web, None).unwrap();
        let mode = std::fs::metadata(&web.generated_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = LinkKey::load(&web, None).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(format!("{a:?}"), "LinkKey(…)");
        // A credential wins over the generated key.
        std::fs::write(
            dir.path().join("link-key"),
            "credential key of some length\n",
        )
        .unwrap();
        let c = LinkKey::load(&web, Some(dir.path())).unwrap();
        assert_eq!(c.0, b"credential key of some length");
    }
}
