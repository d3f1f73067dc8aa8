//! What can go wrong with a PostgreSQL ledger; each message names the database (its URL,
//! never a password) and says what to check.

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("{}", crate::tr!(
        "không kết nối được sổ gửi PostgreSQL {}: {}. Máy chủ cơ sở dữ liệu có chạy và nghe trên địa chỉ đó không? Tường lửa? Tên người dùng, mật khẩu (`password_file:` hoặc thông tin xác thực systemd `ledger-password`) và `sslmode` có đúng không?",
        "cannot connect to the PostgreSQL ledger {}: {}. Is the database server running and listening on that address? A firewall? Are the user name, the password (`password_file:` or the systemd credential `ledger-password`) and `sslmode` right?",
        url, detail
    ))]
    Connect { url: String, detail: String },

    #[error("{}", crate::tr!(
        "sổ gửi PostgreSQL {}: {} thất bại: {}",
        "the PostgreSQL ledger {}: {} failed: {}",
        url, action, detail
    ))]
    Query {
        url: String,
        action: String,
        detail: String,
        /// The server's SQLSTATE, when it answered.
        code: Option<String>,
    },

    #[error("{}", crate::tr!(
        "không thiết lập được TLS tới sổ gửi PostgreSQL {}: {}",
        "cannot set up TLS to the PostgreSQL ledger {}: {}",
        url, detail
    ))]
    Tls { url: String, detail: String },

    #[error("{}", crate::tr!(
        "không đọc được mật khẩu của sổ gửi PostgreSQL từ {}: {}",
        "cannot read the PostgreSQL ledger's password from {}: {}",
        what, detail
    ))]
    Password { what: String, detail: String },

    #[error("{}", crate::tr!(
        "sổ gửi PostgreSQL {} có lược đồ phiên bản {}, mới hơn phiên bản {} mà bản nhacviec này hiểu. Hãy nâng cấp nhacviec trên nút này",
        "the PostgreSQL ledger {} has schema version {}, newer than the version {} this nhacviec understands. Upgrade nhacviec on this node",
        url, found, known
    ))]
    NewerSchema { url: String, found: i64, known: i64 },

    #[error("{}", crate::tr!(
        "sổ gửi PostgreSQL {} đã có dữ liệu ({} lần gửi): không chép đè. Hãy chép vào một cơ sở dữ liệu trống",
        "the PostgreSQL ledger {} already holds data ({} deliveries): nothing is copied over it. Copy into an empty database",
        url, rows
    ))]
    NotEmpty { url: String, rows: i64 },
}

impl PgError {
    /// A transaction that lost a race (deadlock, serialization failure) and can be re-run.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PgError::Query { code: Some(c), .. } if c == "40P01" || c == "40001")
    }
}

/// Maps a driver error to [`PgError::Query`] for `action` on `url`.
pub(super) fn query_err(url: &str, action: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    let (url, action) = (url.to_string(), action.to_string());
    move |e| PgError::Query {
        code: e.code().map(|c| c.code().to_string()),
        detail: describe(&e),
        url,
        action,
    }
}

/// The driver's error with the server's message and its cause, on one line.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    let mut s = describe_only(e);
    // The two TLS mistakes an admin makes most, with what to write instead.
    if s.contains("UnknownIssuer") {
        s.push_str(&crate::tr!(
            " (không CA nào được tin đã ký chứng chỉ của máy chủ: đặt `ca_file:` là tệp PEM của CA đã ký nó)",
            " (no trusted CA signed the server's certificate: set `ca_file:` to the PEM file of the CA that signed it)"
        ));
    } else if s.contains("no encryption") {
        s.push_str(&crate::tr!(
            " (máy chủ chỉ nhận kết nối TLS: đặt `sslmode: verify-full` và `ca_file:`)",
            " (the server takes TLS connections only: set `sslmode: verify-full` and `ca_file:`)"
        ));
    }
    s
}

fn describe_only(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            s
        }
    }
}
