//! clap's usage errors ("unrecognized subcommand", "unexpected argument", "invalid value")
//! in Vietnamese, from what the error carries (its kind and context): clerks who mistype a
//! command read what went wrong and what to write instead in their language. English keeps
//! clap's own words.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// `e` told in Vietnamese, ready to print on stderr; `None` for what is not a usage error
/// (`--help`, `--version`), which clap prints itself.
pub fn vietnamese(e: &clap::Error, args: &[std::ffi::OsString]) -> Option<String> {
    if !e.use_stderr() {
        return None;
    }
    let text = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::StyledStr(s)) => Some(s.to_string()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let list = |k| match e.get(k) {
        Some(ContextValue::Strings(v)) => v.iter().map(|s| format!("`{s}`")).collect(),
        Some(ContextValue::String(s)) => vec![format!("`{s}`")],
        _ => Vec::new(),
    };
    let arg = text(ContextKind::InvalidArg).unwrap_or_default();
    let value = text(ContextKind::InvalidValue).unwrap_or_default();
    let mut out = String::from("lỗi: ");
    let mut tips: Vec<String> = Vec::new();
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let sub = text(ContextKind::InvalidSubcommand).unwrap_or_default();
            out.push_str(&format!("không có lệnh `{sub}`"));
            let similar = list(ContextKind::SuggestedSubcommand);
            if !similar.is_empty() {
                tips.push(format!("có lệnh gần giống: {}", similar.join(", ")));
            }
        }
        ErrorKind::UnknownArgument => {
            out.push_str(&format!("không có tùy chọn hay đối số `{arg}` ở đây"));
            let similar = list(ContextKind::SuggestedArg);
            if !similar.is_empty() {
                tips.push(format!("có tùy chọn gần giống: {}", similar.join(", ")));
            }
            let subs = list(ContextKind::SuggestedSubcommand);
            if !subs.is_empty() {
                tips.push(format!("có lệnh gần giống: {}", subs.join(", ")));
            }
        }
        ErrorKind::InvalidValue => {
            if value.is_empty() {
                out.push_str(&format!("`{arg}` cần một giá trị"));
            } else {
                out.push_str(&format!("`{value}` không phải một giá trị của `{arg}`"));
            }
            let valid = list(ContextKind::ValidValue);
            if !valid.is_empty() {
                tips.push(format!("viết một trong: {}", valid.join(", ")));
            }
            let similar = list(ContextKind::SuggestedValue);
            if !similar.is_empty() {
                tips.push(format!("có phải ý bạn là {}?", similar.join(", ")));
            }
        }
        ErrorKind::ValueValidation => {
            out.push_str(&format!("giá trị `{value}` của `{arg}` không dùng được"));
            if let Some(why) = std::error::Error::source(e) {
                tips.push(range_vi(&why.to_string()));
            }
        }
        ErrorKind::MissingRequiredArgument => {
            out.push_str(&format!(
                "thiếu {}",
                list(ContextKind::InvalidArg).join(", ")
            ));
        }
        ErrorKind::MissingSubcommand => {
            out.push_str("cần một lệnh con");
        }
        ErrorKind::ArgumentConflict => {
            let prior = text(ContextKind::PriorArg).unwrap_or_default();
            out.push_str(&format!(
                "`{arg}` không dùng cùng `{prior}` được: bỏ một trong hai"
            ));
        }
        ErrorKind::NoEquals => {
            out.push_str(&format!("`{arg}` cần dấu `=` trước giá trị"));
        }
        ErrorKind::TooManyValues => {
            out.push_str(&format!("`{value}` thừa: `{arg}` không nhận thêm giá trị"));
        }
        ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            out.push_str(&format!("`{arg}` nhận sai số giá trị"));
        }
        ErrorKind::InvalidUtf8 => {
            out.push_str("một đối số không phải văn bản UTF-8");
        }
        // Anything else: clap's own words, which the kinds above leave rare.
        _ => return None,
    }
    out.push('\n');
    for tip in tips {
        out.push_str(&format!("  gợi ý: {tip}\n"));
    }
    let usage = text(ContextKind::Usage).unwrap_or_default();
    let usage = usage.trim();
    let usage = usage
        .strip_prefix("Cách dùng:")
        .or_else(|| usage.strip_prefix("Usage:"))
        .unwrap_or(usage)
        .trim();
    if !usage.is_empty() {
        out.push_str(&format!("\nCách dùng: {usage}\n"));
    }
    out.push_str(&format!("\nXem thêm: `{} --help`.\n", command_path(args)));
    Some(out)
}

/// The command `args` name ("nhacviec ledger status"): the program and the subcommands
/// among the words, as far as they go.
fn command_path(args: &[std::ffi::OsString]) -> String {
    let mut cmd = super::help::localized();
    let mut path = vec![cmd.get_name().to_string()];
    for word in args.iter().skip(1).filter_map(|a| a.to_str()) {
        let Some(sub) = cmd.find_subcommand(word).cloned() else {
            continue;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    path.join(" ")
}

/// A numeric range check's reason in Vietnamese ("5 is not in 20..=65535").
fn range_vi(why: &str) -> String {
    match why.split_once(" is not in ") {
        Some((v, range)) => {
            let range = range.trim();
            match range.split_once("..=") {
                Some((lo, hi)) => format!("`{v}` phải từ {lo} đến {hi}"),
                None => match range.split_once("..") {
                    Some((lo, "")) => format!("`{v}` phải từ {lo} trở lên"),
                    Some((lo, hi)) => format!("`{v}` phải từ {lo} đến dưới {hi}"),
                    None => why.to_string(),
                },
            }
        }
        None => why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::i18n::{Lang, scoped};

    fn error(args: &[&str]) -> String {
        scoped(Lang::Vi, || {
            let e = crate::cli::help::localized()
                .try_get_matches_from(args)
                .expect_err("a usage error");
            let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            super::vietnamese(&e, &args).unwrap_or_else(|| panic!("not told: {e}"))
        })
    }

    fn no_english(s: &str) {
        for english in [
            "error:",
            "Usage:",
            "tip:",
            "For more information",
            "unexpected",
            "invalid value",
        ] {
            assert!(!s.contains(english), "{english} in {s}");
        }
    }

    #[test]
    fn a_mistyped_command_is_named_with_the_one_meant() {
        let s = error(&["nhacviec", "plna"]);
        assert!(s.starts_with("lỗi: không có lệnh `plna`\n"), "{s}");
        assert!(s.contains("gợi ý: có lệnh gần giống: `plan`"), "{s}");
        assert!(s.contains("Cách dùng: nhacviec"), "{s}");
        assert!(s.contains("Xem thêm: `nhacviec --help`."), "{s}");
        no_english(&s);
    }

    #[test]
    fn an_unknown_option_is_named_with_the_command_s_help() {
        let s = error(&["nhacviec", "run", "--one"]);
        assert!(s.contains("không có tùy chọn hay đối số `--one`"), "{s}");
        assert!(s.contains("có tùy chọn gần giống: `--once`"), "{s}");
        assert!(s.contains("Cách dùng: nhacviec run"), "{s}");
        assert!(s.contains("Xem thêm: `nhacviec run --help`."), "{s}");
        no_english(&s);
        let s = error(&["nhacviec", "ledger", "status", "--bogus"]);
        assert!(
            s.contains("Xem thêm: `nhacviec ledger status --help`."),
            "{s}"
        );
        no_english(&s);
    }

    #[test]
    fn a_wrong_value_lists_the_values_to_write() {
        let s = error(&["nhacviec", "plan", "--format", "xml"]);
        assert!(
            s.contains("`xml` không phải một giá trị của `--format"),
            "{s}"
        );
        assert!(s.contains("Xem thêm: `nhacviec plan --help`."), "{s}");
        assert!(
            s.contains("viết một trong: `table`, `json`, `csv`, `ics`"),
            "{s}"
        );
        no_english(&s);
        let s = error(&["nhacviec", "simulate", "--assume", "never"]);
        assert!(s.contains("`never-done`"), "{s}");
        no_english(&s);
    }

    #[test]
    fn a_number_out_of_range_says_the_range() {
        let s = error(&["nhacviec", "calendar", "--month", "13"]);
        assert!(s.contains("giá trị `13` của `--month"), "{s}");
        assert!(s.contains("phải từ 1 đến 12"), "{s}");
        no_english(&s);
        let s = error(&["nhacviec", "plan", "--width", "5"]);
        assert!(s.contains("phải từ 20 đến 65535"), "{s}");
        no_english(&s);
    }

    #[test]
    fn a_missing_value_or_argument_is_named() {
        let s = error(&["nhacviec", "plan", "--format"]);
        assert!(s.contains("`--format <FORMAT>` cần một giá trị"), "{s}");
        no_english(&s);
        let s = error(&["nhacviec", "ledger", "migrate"]);
        assert!(s.contains("thiếu `--to <URL>`"), "{s}");
        no_english(&s);
    }

    #[test]
    fn help_and_version_are_not_usage_errors() {
        scoped(Lang::Vi, || {
            let e = crate::cli::help::localized()
                .try_get_matches_from(["nhacviec", "--help"])
                .unwrap_err();
            assert!(super::vietnamese(&e, &[]).is_none());
        });
    }
}
