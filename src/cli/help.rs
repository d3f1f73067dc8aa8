//! `--help` in the chosen language: the command definitions (English, in the doc comments)
//! with their descriptions replaced at run time by the catalogue's, before parsing.

use super::Cli;
use crate::t;
use clap::CommandFactory;

/// The command line as clap parses it, its `about` lines and common options' help in the
/// language of [`crate::i18n::lang`].
pub fn localized() -> clap::Command {
    let cmd = with_abouts(root(), subcommand_abouts());
    // The options' help and clap's own words in Vietnamese; in English, the doc comments
    // say it (per command).
    if crate::i18n::lang() == crate::i18n::Lang::Vi {
        nested_vi(clap_words_vi(cmd), "")
    } else {
        cmd
    }
}

/// What the passes above leave in English, in Vietnamese, for `cmd` (at `path`, `""` for
/// the root) and every command under it: the `about` of nested commands, the help of
/// options particular to one command, the plan file's option everywhere, and the values'
/// descriptions of `--format` and `--assume`.
fn nested_vi(mut cmd: clap::Command, path: &str) -> clap::Command {
    if let Some((_, about)) = ABOUTS_VI.iter().find(|(p, _)| *p == path) {
        cmd = cmd.about(*about);
    }
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        let help = ARGS_VI
            .iter()
            .find(|(p, a, _)| *p == path && *a == id)
            .map(|(_, _, h)| *h)
            .or_else(|| ARG_HELP_VI.iter().find(|(a, _)| *a == id).map(|(_, h)| *h))
            .or((id == "path").then_some("Tệp YAML của kế hoạch."));
        if let Some(help) = help {
            cmd = cmd.mut_arg(&id, |a| a.help(help));
        }
        cmd = match (path, id.as_str()) {
            ("calendar", "format") => cmd.mut_arg(&id, |a| {
                a.value_parser(values_vi::<super::render::calendar::CalendarFormat>(
                    CALENDAR_FORMATS_VI,
                ))
            }),
            (_, "format") => cmd.mut_arg(&id, |a| {
                a.value_parser(values_vi::<super::render::Format>(FORMATS_VI))
            }),
            ("simulate", "assume") => cmd.mut_arg(&id, |a| {
                a.value_parser(values_vi::<crate::delivery::simulate::Assume>(ASSUME_VI))
            }),
            _ => cmd,
        };
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let at = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| nested_vi(s, &at));
    }
    cmd
}

/// `E`'s values as clap knows them, each described in Vietnamese where `vi` says how; the
/// parsed value is still an `E`.
fn values_vi<E: clap::ValueEnum + Clone + Send + Sync + 'static>(
    vi: &'static [(&'static str, &'static str)],
) -> impl clap::builder::TypedValueParser<Value = E> {
    use clap::builder::TypedValueParser as _;
    let values: Vec<clap::builder::PossibleValue> = E::value_variants()
        .iter()
        .filter_map(E::to_possible_value)
        .map(
            |v| match vi.iter().find(|(name, _)| *name == v.get_name()) {
                Some((_, help)) => v.help(*help),
                None => v,
            },
        )
        .collect();
    clap::builder::PossibleValuesParser::new(values).try_map(|s: String| E::from_str(&s, true))
}

/// The `about` of commands the top-level list does not cover, by their path.
const ABOUTS_VI: &[(&str, &str)] = &[
    (
        "done",
        "Ghi nhận một nhiệm vụ (phần của một đơn vị, một lần thực hiện) đã xong: các lời nhắc của nó dừng.",
    ),
    (
        "undone",
        "Rút lại một lần hoàn thành đã ghi bằng `done` (cùng đơn vị và cùng lần thực hiện).",
    ),
    (
        "ledger reset",
        "Nhận sổ gửi đang đặt ở đó (mới, đã làm trống hoặc khôi phục từ nơi khác) làm sổ dùng từ nay: lần chạy sau gửi những gì nó thấy đến hạn, kể cả trong khoảng gửi bù.",
    ),
    (
        "ledger backup",
        "Sao sổ gửi ra PATH (chưa được có sẵn) bằng cơ chế sao lưu trực tuyến của SQLite, an toàn cả khi daemon đang chạy. Chỉ chép tệp .db thì thiếu những gì tệp -wal đang giữ.",
    ),
    (
        "ledger migrate",
        "Chép toàn bộ lịch sử của sổ gửi SQLite sang một cơ sở dữ liệu PostgreSQL còn trống, rồi trỏ `ledger: { url: … }` của mọi nút vào đó. Từ chối cơ sở dữ liệu đã có sổ gửi.",
    ),
    (
        "ledger status",
        "Các nút đã thấy (PostgreSQL), lần quét gần nhất và mã băm cấu hình của từng nút, các email đang được giữ (lease), và số lần gửi theo trạng thái.",
    ),
    (
        "web feeds",
        "In địa chỉ lịch của từng đơn vị, `mã-đơn-vị<TAB>URL`: ứng dụng lịch (Outlook, Google, Thunderbird) đăng ký theo địa chỉ đó. Đổi khóa liên kết thì mọi địa chỉ cũ hết hiệu lực.",
    ),
];

/// Options particular to one command, by (command path, argument id).
const ARGS_VI: &[(&str, &str, &str)] = &[
    (
        "done",
        "note",
        "Lý do, hoặc những gì đã nộp (giữ trong nhật ký hoàn thành của sổ gửi).",
    ),
    (
        "undone",
        "note",
        "Lý do, hoặc những gì đã nộp (giữ trong nhật ký hoàn thành của sổ gửi).",
    ),
    (
        "ledger reset",
        "confirm",
        "Bắt buộc: các lời nhắc còn trong khoảng gửi bù có thể được gửi lại.",
    ),
    ("ledger backup", "dest", "Nơi ghi bản sao."),
    (
        "ledger migrate",
        "to",
        "Cơ sở dữ liệu: postgresql://người-dùng@máy[:cổng]/tên-cơ-sở-dữ-liệu, không kèm mật khẩu.",
    ),
    (
        "ledger migrate",
        "password_file",
        "Tệp chứa mật khẩu (nếu không có: thông tin xác thực systemd `ledger-password`, nếu có).",
    ),
    (
        "ledger migrate",
        "sslmode",
        "TLS tới cơ sở dữ liệu: disable, prefer, require hoặc verify-full.",
    ),
    (
        "log",
        "completions",
        "Xem nhật ký hoàn thành thay vì các lần gửi (`done`, `undone`, liên kết xác nhận trong email); lọc theo --office và --task.",
    ),
    (
        "import",
        "file",
        "Kế hoạch: một tệp .docx, hoặc văn bản chép từ PDF (các ô của bảng cách nhau bằng tab).",
    ),
    (
        "import",
        "offices",
        "Một cấu hình nhacviec có sẵn: đơn vị và nhóm của nó được khớp theo tên, và các thiết lập (offices, groups, leadership, reminders, schedule, mail, ledger) được giữ lại.",
    ),
    ("simulate", "from", "Ngày đầu của khoảng (tính cả ngày đó)."),
    (
        "simulate",
        "assume",
        "Những nhiệm vụ nào đã xong: như `done:` của cấu hình ghi, mọi hạn đều xong đúng hạn, hoặc không việc nào xong.",
    ),
];

const FORMATS_VI: &[(&str, &str)] = &[("ics", "iCalendar (RFC 5545): chỉ dùng cho `plan`.")];

const CALENDAR_FORMATS_VI: &[(&str, &str)] = &[
    ("table", "Bảng chữ để xem trên terminal."),
    ("json", "Một mảng JSON, mỗi ngày một đối tượng."),
    (
        "ics",
        "Một tệp iCalendar (RFC 5545), mỗi ngày một sự kiện cả ngày.",
    ),
];

const ASSUME_VI: &[(&str, &str)] = &[
    ("as-written", "Như `done:` của cấu hình ghi."),
    (
        "done-on-deadline",
        "Mọi hạn đều được đáp ứng: mỗi nhiệm vụ (mỗi lần thực hiện) được ghi là xong đúng vào hạn của nó, như thư ký ghi `done:` vào hôm sau.",
    ),
    ("never-done", "Không việc gì xong: mọi `done:` bị bỏ đi."),
];

/// The command line with its own `about` and the global options' help.
fn root() -> clap::Command {
    Cli::command()
        .about(t!(
            "Nhắc việc: gửi email nhắc các nhiệm vụ của một kế hoạch hành chính, vào ngày làm việc",
            "Nhắc việc: email reminders for the tasks of an administrative plan, on working days"
        ))
        .mut_arg("log_format", |a| {
            a.help(t!(
                "Cách ghi sự kiện nhật ký ra stderr.",
                "How to write log events to stderr."
            ))
        })
        .mut_arg("lang", |a| {
            a.help(t!(
                "Ngôn ngữ của thông báo: vi (tiếng Việt, mặc định) hoặc en (tiếng Anh); nếu không có thì theo NHACVIEC_LANG, LC_ALL, LC_MESSAGES, LANG, rồi khóa `language:` của cấu hình.",
                "The language of messages: vi (Vietnamese, the default) or en (English); else NHACVIEC_LANG, LC_ALL, LC_MESSAGES, LANG, then the config's `language:`."
            ))
        })
}

/// Each subcommand's `about` line.
fn subcommand_abouts() -> [(&'static str, &'static str); 14] {
    [
        (
            "ledger",
            t!(
                "Quản lý sổ gửi: `ledger reset --confirm` chấp nhận một sổ mới hoặc đã làm trống; `backup`, `migrate --to URL` (sang PostgreSQL), `status`.",
                "Manage the delivery ledger: `ledger reset --confirm` accepts a new or emptied one; `backup`, `migrate --to URL` (to PostgreSQL), `status`."
            ),
        ),
        (
            "check",
            t!(
                "Kiểm tra cấu hình: mọi lỗi cùng lúc, kèm dòng, cột và cách sửa.",
                "Validate the config: every error at once, with line, column and a fix."
            ),
        ),
        (
            "plan",
            t!(
                "Liệt kê các lần nhắc sẽ gửi theo thứ tự thời gian, và các nhiệm vụ chưa có hạn.",
                "List the nudges that will be sent, in time order, and the tasks with no date yet."
            ),
        ),
        (
            "run",
            t!(
                "Tiến trình nền: quét vào các giờ đã cấu hình và gửi những gì đến hạn.",
                "The daemon: sweep at the configured times and send what is due."
            ),
        ),
        (
            "send-test",
            t!(
                "Gửi một email nhắc mẫu qua kênh gửi đã cấu hình và in câu trả lời.",
                "Send one sample reminder through the configured transport and print the reply."
            ),
        ),
        (
            "log",
            t!(
                "Xem những gì đã gửi: các mục mới nhất của sổ gửi, từ cũ đến mới.",
                "Read what was sent: the delivery ledger's latest entries, oldest to newest."
            ),
        ),
        (
            "diff",
            t!(
                "Một lần sửa kế hoạch thay đổi gì: nhiệm vụ chuyển đơn vị, thêm, bớt, hạn dời, và các lần nhắc chuyển giữa các đơn vị trong những ngày tới.",
                "What an edit of the plan changes: tasks reassigned, added, removed, deadlines moved, and the reminders that move between offices in the next days."
            ),
        ),
        (
            "man",
            t!(
                "In trang hướng dẫn nhacviec(1) dạng roff: `nhacviec man | man -l -`.",
                "Print the manual page nhacviec(1), in roff: `nhacviec man | man -l -`."
            ),
        ),
        (
            "completions",
            t!(
                "In script gợi ý lệnh cho shell: `nhacviec completions bash > /etc/bash_completion.d/nhacviec`.",
                "Print a shell completion script: `nhacviec completions bash > /etc/bash_completion.d/nhacviec`."
            ),
        ),
        (
            "calendar",
            t!(
                "Các ngày nghỉ và các thứ Bảy làm bù, kèm lý do và ngày âm lịch.",
                "The days off and the Saturdays worked, with their reason and lunar date."
            ),
        ),
        (
            "import",
            t!(
                "Đọc bảng phụ lục của kế hoạch (.docx hoặc văn bản từ PDF) và in ra YAML.",
                "Read a plan's appendix table (.docx or text from a PDF) and print it as YAML."
            ),
        ),
        (
            "simulate",
            t!(
                "Chạy lại các lần quét của một khoảng thời gian, không gửi gì: mỗi đơn vị nhận bao nhiêu email.",
                "Replay a period's scheduled sweeps, sending nothing: how many emails each gets."
            ),
        ),
        (
            "web",
            t!(
                "Các địa chỉ của máy chủ web: `web feeds` in địa chỉ lịch của từng đơn vị.",
                "The web server's addresses: `web feeds` prints each office's calendar feed."
            ),
        ),
        (
            "help",
            t!(
                "In trợ giúp của lệnh này hoặc của lệnh con đã cho.",
                "Print this message or the help of the given subcommand(s)"
            ),
        ),
    ]
}

/// Each subcommand's `about` line, and the help of its `path` argument if it has one.
fn with_abouts(mut cmd: clap::Command, abouts: [(&str, &'static str); 14]) -> clap::Command {
    for (name, about) in abouts {
        if cmd.find_subcommand(name).is_some() {
            cmd = cmd.mut_subcommand(name, |s| {
                let s = s.about(about);
                if s.get_arguments().any(|a| a.get_id() == "path") {
                    s.mut_arg("path", |a| {
                        a.help(t!("Tệp YAML của kế hoạch.", "The plan's YAML file."))
                    })
                } else {
                    s
                }
            });
        }
    }
    cmd
}

/// clap's own words in Vietnamese, for `cmd` and its subcommands: the usage line and section
/// headings (through a help template and help headings), and its `-h`/`-V` flags' help (by
/// replacing the built-in flags with the same ones described in Vietnamese).
fn clap_words_vi(cmd: clap::Command) -> clap::Command {
    use clap::{Arg, ArgAction};
    let has_version = cmd.get_version().is_some();
    let mut cmd = cmd
        .help_template(
            "{before-help}{about-with-newline}\nCách dùng: {usage}\n\n{all-args}{after-help}",
        )
        .subcommand_help_heading("Lệnh")
        .subcommand_value_name("LỆNH")
        .disable_help_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("In trợ giúp."),
        );
    if has_version {
        cmd = cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help("In phiên bản."),
        );
    }
    let args: Vec<(clap::Id, bool)> = cmd
        .get_arguments()
        .filter(|a| a.get_help_heading().is_none())
        .map(|a| (a.get_id().clone(), a.is_positional()))
        .collect();
    for (id, positional) in args {
        let heading = if positional {
            "Đối số"
        } else {
            "Tùy chọn"
        };
        cmd = cmd.mut_arg(id, |a| a.help_heading(heading));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(&name, clap_words_vi);
    }
    cmd
}

/// The options' help in Vietnamese, by argument id.
const ARG_HELP_VI: &[(&str, &str)] = &[
    (
        "at",
        "Tính như thể lúc này là thời điểm đó: 2024-09-30, 30/09/2024, hôm nay, -7d, 2024-09-30T08:00 hoặc RFC 3339.",
    ),
    ("days", "Xem trước bao nhiêu ngày."),
    ("until", "Đến ngày này (tính cả ngày đó)."),
    (
        "since",
        "Từ ngày hoặc thời điểm này: 2024-09-30, 30/09/2024, hôm nay, hôm qua, -7d.",
    ),
    ("office", "Chỉ của đơn vị này."),
    ("task", "Chỉ của nhiệm vụ này."),
    (
        "status",
        "Chỉ các lần gửi ở trạng thái này: pending, sent, retrying, failed hoặc skipped.",
    ),
    (
        "lines",
        "N mục mới nhất (mặc định: 50 trong bảng, tất cả trong JSON và CSV).",
    ),
    ("all", "Mọi mục."),
    (
        "format",
        "table (cho người đọc), json hoặc csv (mọi trường, cho chương trình).",
    ),
    ("wide", "Mọi cột, không xuống dòng hay cắt bớt."),
    (
        "width",
        "Độ rộng của bảng, theo số cột (mặc định: của terminal, hoặc 100; `COLUMNS` cũng đặt được).",
    ),
    ("bom", "Thêm BOM vào đầu CSV để Excel đọc đúng tiếng Việt."),
    (
        "once",
        "Quét một lần (kèm các lần thử lại) rồi thoát: 0 nếu mọi thư đã đi, 1 nếu không.",
    ),
    ("dry_run", "Dựng thư sẽ gửi; không gửi, không ghi gì."),
    ("to", "Gửi tới địa chỉ này."),
    ("old", "Kế hoạch trước khi sửa."),
    ("new", "Kế hoạch sau khi sửa."),
    ("year", "Năm (mặc định: năm nay)."),
    ("month", "Một tháng của năm đó (1–12)."),
];

#[cfg(test)]
mod tests {
    use crate::i18n::{Lang, scoped};

    fn help(lang: Lang, args: &[&str]) -> String {
        scoped(lang, || {
            super::localized()
                .try_get_matches_from(args)
                .expect_err("--help stops")
                .render()
                .to_string()
        })
    }

    #[test]
    fn the_help_speaks_the_chosen_language() {
        let vi = help(Lang::Vi, &["nhacviec", "--help"]);
        assert!(vi.contains("Kiểm tra cấu hình: mọi lỗi cùng lúc"), "{vi}");
        assert!(vi.contains("Ngôn ngữ của thông báo"), "{vi}");
        let en = help(Lang::En, &["nhacviec", "--help"]);
        assert!(
            en.contains("Validate the config: every error at once"),
            "{en}"
        );
        let vi = help(Lang::Vi, &["nhacviec", "check", "--help"]);
        assert!(vi.contains("Tệp YAML của kế hoạch."), "{vi}");
        let vi = help(Lang::Vi, &["nhacviec", "log", "--help"]);
        assert!(vi.contains("Chỉ của đơn vị này."), "{vi}");
        let en = help(Lang::En, &["nhacviec", "log", "--help"]);
        assert!(en.contains("Only this office's deliveries"), "{en}");
    }

    #[test]
    fn clap_own_words_speak_the_chosen_language() {
        for args in [
            &["nhacviec", "--help"][..],
            &["nhacviec", "log", "--help"],
            &["nhacviec", "ledger", "reset", "--help"],
        ] {
            let vi = help(Lang::Vi, args);
            for english in [
                "Usage:",
                "Options:",
                "Commands:",
                "Arguments:",
                "Print help",
            ] {
                assert!(!vi.contains(english), "{english} in {vi}");
            }
            assert!(vi.contains("Cách dùng: nhacviec"), "{vi}");
            assert!(vi.contains("Tùy chọn"), "{vi}");
            assert!(
                vi.contains("-h, --help") && vi.contains("In trợ giúp."),
                "{vi}"
            );
            let en = help(Lang::En, args);
            assert!(en.contains("Usage: nhacviec"), "{en}");
            assert!(en.contains("Options:") && en.contains("Print help"), "{en}");
        }
        let vi = help(Lang::Vi, &["nhacviec", "--help"]);
        assert!(vi.contains("Lệnh:") && vi.contains("-V, --version"), "{vi}");
        let vi = help(Lang::Vi, &["nhacviec", "check", "--help"]);
        assert!(vi.contains("Đối số:") || vi.contains("Tùy chọn:"), "{vi}");
    }
}

#[cfg(test)]
mod every_word {
    use crate::i18n::{Lang, scoped};

    /// Whether `s` reads as Vietnamese: it has a letter only Vietnamese writes.
    fn vietnamese(s: &str) -> bool {
        s.chars().any(|c| {
            "ăâđêôơưáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
                .contains(c.to_lowercase().next().unwrap_or(c))
        })
    }

    /// Every command's `about` and every argument's help and value descriptions, with
    /// where they are, for `cmd` and everything under it.
    fn texts(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        if let Some(a) = cmd.get_about() {
            out.push((format!("{path}: about"), a.to_string()));
        }
        if let Some(a) = cmd.get_long_about() {
            out.push((format!("{path}: long about"), a.to_string()));
        }
        for arg in cmd.get_arguments() {
            let at = format!("{path} {}", arg.get_id());
            for h in [arg.get_help(), arg.get_long_help()].into_iter().flatten() {
                out.push((at.clone(), h.to_string()));
            }
            for v in arg.get_possible_values() {
                if let Some(h) = v.get_help() {
                    out.push((format!("{at}={}", v.get_name()), h.to_string()));
                }
            }
        }
        for sub in cmd.get_subcommands() {
            texts(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn the_vietnamese_help_has_no_english_left() {
        let cmd = scoped(Lang::Vi, super::localized);
        let mut all = Vec::new();
        texts(&cmd, "nhacviec", &mut all);
        let english: Vec<String> = all
            .iter()
            .filter(|(_, t)| !vietnamese(t))
            .map(|(at, t)| format!("{at}: {t}"))
            .collect();
        assert!(
            english.is_empty(),
            "{} left in English:\n{}",
            english.len(),
            english.join("\n")
        );
    }
}
