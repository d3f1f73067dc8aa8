//! `ledger: { url: postgresql://…, password_file, sslmode, ca_file, lease }`: the shared
//! PostgreSQL ledger of a highly available deployment.

use super::values::duration_in;
use super::{PgLedger, Reader, SslMode};
use crate::plan::yaml::MapReader;
use std::time::Duration;

/// How long a reservation holds when `lease:` is not given: far longer than one email takes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

impl Reader<'_> {
    /// The PostgreSQL ledger, when `url:` is given; its problems reported at their keys.
    pub(super) fn postgres_ledger(&self, m: &MapReader) -> Option<PgLedger> {
        let at = |key: &str| m.key_pos(key).unwrap_or(m.pos);
        let Some(url) = self.opt_text(m, "url") else {
            for key in ["password_file", "sslmode", "ca_file", "lease"] {
                if m.get(key).is_some() {
                    self.error(
                        at(key),
                        crate::tr!(
                            "`{key}` chỉ dùng cho sổ gửi PostgreSQL",
                            "`{key}` is only for a PostgreSQL ledger"
                        ),
                        crate::tr!(
                            "thêm `url: postgresql://nhacviec@máy-chủ/nhacviec`, hoặc xóa `{key}`",
                            "add `url: postgresql://nhacviec@host/nhacviec`, or remove `{key}`"
                        ),
                    );
                }
            }
            return None;
        };
        if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
            self.error(
                at("url"),
                crate::tr!("`url` của sổ gửi phải bắt đầu bằng postgresql://", "the ledger's `url` must start with postgresql://"),
                crate::tr!("ví dụ `url: postgresql://nhacviec@db.vpubnd.example/nhacviec`; sổ gửi SQLite dùng `path:`", "e.g. `url: postgresql://nhacviec@db.vpubnd.example/nhacviec`; a SQLite ledger uses `path:`"),
            );
            return None;
        }
        match url.parse::<tokio_postgres::Config>() {
            Err(e) => {
                self.error(
                    at("url"),
                    crate::tr!("`url` của sổ gửi không đọc được: {e}", "the ledger's `url` cannot be read: {e}"),
                    crate::tr!("dạng postgresql://người-dùng@máy-chủ[:cổng]/cơ-sở-dữ-liệu; `sslmode` viết riêng", "the form is postgresql://user@host[:port]/database; write `sslmode` as its own key"),
                );
                return None;
            }
            Ok(c) if c.get_password().is_some() => {
                self.error(
                    at("url"),
                    crate::t!("`url` của sổ gửi chứa mật khẩu", "the ledger's `url` holds a password"),
                    crate::t!("đừng bao giờ viết mật khẩu trong tệp cấu hình: xóa nó khỏi `url` và dùng `password_file:` hoặc thông tin xác thực systemd `ledger-password` (LoadCredential)", "never write a password in the config file: remove it from `url` and use `password_file:` or the systemd credential `ledger-password` (LoadCredential)"),
                );
                return None;
            }
            Ok(_) => {}
        }
        let sslmode = match self.opt_text(m, "sslmode").as_deref() {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                self.error(
                    at("sslmode"),
                    crate::tr!(
                        "không có `sslmode: {other}`",
                        "there is no `sslmode: {other}`"
                    ),
                    crate::t!(
                        "chọn disable, prefer, require hoặc verify-full",
                        "choose disable, prefer, require or verify-full"
                    ),
                );
                SslMode::Prefer
            }
        };
        let ca_file = self.opt_text(m, "ca_file").map(|p| self.resolve(&p));
        if let Some(p) = &ca_file
            && !p.is_file()
        {
            self.error(
                at("ca_file"),
                crate::tr!(
                    "không có tệp chứng chỉ {}",
                    "the certificate file {} does not exist",
                    p.display()
                ),
                crate::tr!(
                    "cho đường dẫn chứng chỉ CA của máy chủ cơ sở dữ liệu ở dạng PEM",
                    "give the path of the database server's CA certificate in PEM form"
                ),
            );
        }
        let lease = self
            .opt_checked(m, "lease", |d| {
                duration_in(
                    d,
                    Duration::from_secs(1),
                    Duration::from_secs(86400),
                    "`lease`",
                )
            })
            .unwrap_or(DEFAULT_LEASE);
        Some(PgLedger {
            url,
            password_file: self.opt_text(m, "password_file").map(|p| self.resolve(&p)),
            sslmode,
            ca_file,
            lease,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::config::tests::load_str;
    use crate::plan::config::{SslMode, Transport};
    use std::time::Duration;

    const BASE: &str = "offices:\n  hctc:\n    name: Phòng Hành chính\n    email: hctc@vpubnd.example\ntasks:\n  - id: T.1\n    title: Báo cáo\n    deadline: 31/01/2024\n    lead: hctc\n";

    fn with_ledger(ledger: &str) -> String {
        format!("{BASE}ledger:\n{ledger}")
    }

    #[test]
    fn a_postgresql_url_chooses_the_shared_ledger_with_its_defaults() {
        let c = load_str(&with_ledger(
            "  url: postgresql://nhacviec@db.vpubnd.example/nhacviec\n",
        ))
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
        let pg = c.ledger.postgres.expect("a PostgreSQL ledger");
        assert_eq!(pg.url, "postgresql://nhacviec@db.vpubnd.example/nhacviec");
        assert_eq!(pg.sslmode, SslMode::Prefer);
        assert_eq!(pg.lease, Duration::from_secs(300));
        assert_eq!(pg.password_file, None);
        assert!(matches!(c.mail.transport, Transport::Outbox(_)));
        // Without `url`, the SQLite file as before.
        let c = load_str(BASE).unwrap().config;
        assert_eq!(c.ledger.postgres, None);
    }

    #[test]
    fn sslmode_lease_and_password_file_are_read() {
        let c = load_str(&with_ledger(
            "  url: postgres://nhacviec@127.0.0.1:5433/nv\n  sslmode: verify-full\n  lease: 30s\n  password_file: ledger.pw\n",
        ))
        .unwrap_or_else(|r| panic!("{}", r.render()))
        .config;
        let pg = c.ledger.postgres.unwrap();
        assert_eq!(pg.sslmode, SslMode::VerifyFull);
        assert_eq!(pg.lease, Duration::from_secs(30));
        assert!(pg.password_file.unwrap().ends_with("ledger.pw"));
    }

    #[test]
    fn a_password_in_the_url_a_wrong_scheme_sslmode_or_lease_are_errors_at_their_keys() {
        for (ledger, expect) in [
            (
                "  url: postgresql://nhacviec:hunter2@db.vpubnd.example/nhacviec\n",
                "the ledger's `url` holds a password",
            ),
            (
                "  url: mysql://nhacviec@db.vpubnd.example/nhacviec\n",
                "must start with postgresql://",
            ),
            (
                "  url: postgresql://nhacviec@db.vpubnd.example/nhacviec\n  sslmode: verify-ca\n",
                "there is no `sslmode: verify-ca`",
            ),
            (
                "  url: postgresql://nhacviec@db.vpubnd.example/nhacviec\n  lease: 0s\n",
                "`lease` is out of range",
            ),
            ("  lease: 30s\n", "`lease` is only for a PostgreSQL ledger"),
        ] {
            let r = load_str(&with_ledger(ledger)).unwrap_err();
            let text = r.render();
            assert!(text.contains(expect), "{ledger}: {text}");
            // What the daemon logs (no source excerpt) never repeats the password.
            let short = r.render_short().join("\n");
            assert!(short.contains(expect), "{short}");
            assert!(!short.contains("hunter2"), "{short}");
        }
    }
}
