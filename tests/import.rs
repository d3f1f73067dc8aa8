//! `nhacviec import` through the real binary: the seed plan's text (as copied from its PDF)
//! reproduces config/khanh-hoa-2024.yaml field by field, except for the listed decisions the
//! document does not make; a .docx made by LibreOffice imports to the same tasks.

#[path = "support/skip.rs"]
mod skip;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn seed_text() -> PathBuf {
    root().join("tests/data/ke-hoach-cchc-2024.txt")
}

fn seed_config() -> PathBuf {
    root().join("config/khanh-hoa-2024.yaml")
}

fn nhacviec(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(args)
        .env_remove("NHACVIEC_CONFIG")
        .env("NHACVIEC_LANG", "en")
        .env_remove("STATE_DIRECTORY")
        .output()
        .expect("run nhacviec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn import(file: &Path) -> String {
    let (code, out, err) = nhacviec(&[
        "import",
        file.to_str().unwrap(),
        "--offices",
        seed_config().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    out
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `lead`/`cooperating` as a list whether written as one id or several.
fn ids(v: &Value) -> Value {
    match v {
        Value::Null => Value::Array(vec![]),
        Value::String(_) => Value::Array(vec![v.clone()]),
        v => v.clone(),
    }
}

fn phrase(v: &Value) -> &Value {
    if v.is_object() { &v["phrase"] } else { v }
}

/// Every difference between two configs' plans, as (where, field).
fn differences(expected: &Value, got: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for k in ["title", "reference", "year"] {
        if expected["plan"][k] != got["plan"][k] {
            out.insert(("plan".into(), k.into()));
        }
    }
    let sections = |v: &Value| v["sections"].as_object().cloned().unwrap_or_default();
    let (es, gs) = (sections(expected), sections(got));
    for (id, name) in &es {
        if gs.get(id) != Some(name) {
            out.insert((format!("section {id}"), "name".into()));
        }
    }
    for id in gs.keys().filter(|id| !es.contains_key(*id)) {
        out.insert((format!("section {id}"), "extra".into()));
    }
    let tasks = |v: &Value| -> Vec<Value> { v["tasks"].as_array().cloned().unwrap_or_default() };
    let (et, gt) = (tasks(expected), tasks(got));
    let find = |list: &[Value], id: &Value| list.iter().find(|t| t["id"] == *id).cloned();
    for e in &et {
        let id = e["id"].as_str().unwrap().to_string();
        let Some(g) = find(&gt, &e["id"]) else {
            out.insert((id, "missing".into()));
            continue;
        };
        for f in ["title", "product", "deadline"] {
            if e[f] != g[f] {
                out.insert((id.clone(), f.into()));
            }
        }
        // Whatever the YAML decided about a deadline, the phrase is the document's.
        assert_eq!(
            phrase(&e["deadline"]),
            phrase(&g["deadline"]),
            "{id}: deadline phrase"
        );
        for f in ["lead", "cooperating", "report_to"] {
            if ids(&e[f]) != ids(&g[f]) {
                out.insert((id.clone(), f.into()));
            }
        }
    }
    for g in &gt {
        if find(&et, &g["id"]).is_none() {
            out.insert((g["id"].as_str().unwrap().to_string(), "extra".into()));
        }
    }
    out
}

/// The differences the seed YAML is allowed to have from its document: decisions the
/// clerk made that the plan does not.
/// Notes and reminder policies are the clerk's and are not compared.
const ALLOWED: &[(&str, &str)] = &[
    // Point 1 of part IV (Tổ chức thực hiện) is in the plan's body, not in the appendix.
    ("TCTH.1", "missing"),
    ("section TCTH", "name"),
    // "ít nhất 02 lần/năm": the YAML adds `checkpoints: 2` (the import comments on it).
    ("I.3", "deadline"),
    // Bullet items: the document starts each with a capital, the YAML lowercases the
    // ones after the first ("; các quy định…", "; nhắc việc…"). The import keeps the
    // document's letters.
    ("II.5", "product"),
    ("VI.1", "product"),
    // "Sau khi Đề án được phê duyệt": which Đề án (III.3, III.4) and `days: 60` are the
    // clerk's decisions (the import comments on the line).
    ("IV.2", "deadline"),
    ("IV.3", "deadline"),
    // "… gửi Sở Nội vụ thẩm định", product "Hồ sơ gửi Sở Nội vụ": the import names Sở Nội vụ
    // in `report_to:` as it does for III.1–III.4 and VII.5; the YAML leaves it out (the
    // task has no date yet, so no email names it either way).
    ("VII.6", "report_to"),
    // "Theo quy định": the quarterly rule (`every: quarter`, day 14, 2 working days after)
    // is the clerk's reading of the regulation.
    ("VII.5", "deadline"),
];

fn allowed() -> BTreeSet<(String, String)> {
    ALLOWED
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn the_seed_text_reproduces_the_seed_config() {
    let out = import(&seed_text());
    let got = yaml(&out);
    let expected = yaml(&std::fs::read_to_string(seed_config()).unwrap());
    let diff = differences(&expected, &got);
    let allowed = allowed();
    let unexpected: Vec<_> = diff.difference(&allowed).collect();
    let stale: Vec<_> = allowed.difference(&diff).cloned().collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "differences not in the allow-list: {unexpected:#?}\nallowed but no longer different: {stale:#?}"
    );
    assert_eq!(got["tasks"].as_array().unwrap().len(), 29);
    // The carried-over settings are the config's own.
    for k in [
        "offices",
        "groups",
        "leadership",
        "reminders",
        "schedule",
        "mail",
    ] {
        assert_eq!(got[k], expected[k], "{k}");
    }
}

#[test]
fn the_imported_seed_fails_check_only_where_a_comment_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("2024.yaml");
    std::fs::write(&path, import(&seed_text())).unwrap();
    let (code, out, err) = nhacviec(&["check", "-c", path.to_str().unwrap(), "--at", "2024-01-22"]);
    assert_eq!(code, 1, "{out}{err}");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 2, "{err}");
    // Each error's line is just under a "KIỂM TRA:" comment (warnings aside).
    let all: Vec<&str> = err.lines().collect();
    let positions: Vec<&str> = all
        .windows(2)
        .filter(|w| w[0].starts_with("error"))
        .filter_map(|w| w[1].trim().strip_prefix("--> "))
        .collect();
    assert_eq!(positions.len(), 2, "{err}");
    for pos in positions {
        let line: usize = pos.rsplit(':').nth(1).unwrap().parse().unwrap();
        assert!(
            lines[line - 1].contains("KIỂM TRA:") || lines[line].contains("KIỂM TRA:"),
            "no comment at line {line}: {}",
            lines[line - 1]
        );
    }
}

#[test]
fn without_a_config_unknown_offices_are_proposed_once_each() {
    let (code, out, err) = nhacviec(&["import", seed_text().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let got = yaml(&out);
    let offices = got["offices"].as_object().unwrap();
    let names: BTreeSet<&str> = offices
        .values()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    // "Phòng HC-TC" and "Phòng Hành chính – Tổ chức" are one office.
    assert_eq!(
        names,
        BTreeSet::from([
            "Phòng HC-TC",
            "Phòng Kiểm soát TTHC",
            "Phòng Kinh tế",
            "Phòng Quản trị - Tài vụ",
            "Sở Nội vụ",
            "Sở Tư pháp",
            "Sở Thông tin và Truyền thông",
        ])
    );
    assert_eq!(out.matches("đơn vị mới").count(), offices.len());
    let t = |id: &str| {
        got["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(t("VII.1")["lead"], t("I.1")["lead"]);
}

/// `soffice` (Debian package libreoffice-writer-nogui), or `None`: skip, except under CI.
fn soffice() -> Option<&'static str> {
    let found = Command::new("soffice")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip::skip_or_fail("soffice is missing (apt-get install libreoffice-writer-nogui)");
        return None;
    }
    Some("soffice")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The seed's text as an HTML document: its heading as paragraphs, its appendix as one
/// table with the page breaks' repeated header rows and continued rows as they are, the
/// section rows merged across the four columns (colspan → w:gridSpan), and the cells IV.2
/// and IV.3 share merged down (rowspan → w:vMerge).
fn seed_as_html() -> String {
    let text = std::fs::read_to_string(seed_text()).unwrap();
    let tags = regex::Regex::new(r"<[^>]*>").unwrap();
    let mut html = String::from("<html><head><meta charset=\"utf-8\"></head><body>\n");
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut in_heading = true;
    for line in text.lines() {
        if line.contains('\t') {
            rows.push(
                line.split('\t')
                    .map(|c| {
                        tags.replace_all(c, " ")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect(),
            );
        } else if line.trim() == "Phụ lục" {
            in_heading = false;
        } else if in_heading {
            html.push_str(&format!("<p>{}</p>\n", html_escape(line.trim())));
        }
    }
    // IV.2 and IV.3 share their Tiến độ and Phân công: merged down (rowspan → w:vMerge).
    let iv2 = rows
        .iter()
        .position(|r| r[1] == "Tiếp tục triển khai cơ cấu công chức theo Đề án vị trí việc làm")
        .unwrap();
    assert_eq!(rows[iv2][3..], rows[iv2 + 1][3..]);
    html.push_str("<table border=\"1\">\n");
    for (i, r) in rows.iter().enumerate() {
        let header = r[0] == "STT";
        html.push_str(if i == 0 { "<thead><tr>" } else { "<tr>" });
        let section = !header && !r[0].is_empty() && r[0].chars().all(|c| "IVX".contains(c));
        for (k, cell) in r.iter().enumerate() {
            let tag = if header { "th" } else { "td" };
            if section && k == 1 {
                html.push_str(&format!("<td colspan=\"4\">{}</td>", html_escape(cell)));
                break;
            }
            if k >= 3 && i == iv2 {
                html.push_str(&format!("<td rowspan=\"2\">{}</td>", html_escape(cell)));
                continue;
            }
            if k >= 3 && i == iv2 + 1 {
                continue;
            }
            html.push_str(&format!("<{tag}>{}</{tag}>", html_escape(cell)));
        }
        html.push_str(if i == 0 { "</tr></thead>\n" } else { "</tr>\n" });
    }
    html.push_str("</table></body></html>\n");
    html
}

#[test]
fn a_docx_made_by_libreoffice_imports_to_the_same_tasks_as_the_text() {
    let Some(soffice) = soffice() else { return };
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("ke-hoach.html");
    std::fs::write(&html, seed_as_html()).unwrap();
    let profile = format!("file://{}", dir.path().join("profile").display());
    let out = Command::new(soffice)
        .arg(format!("-env:UserInstallation={profile}"))
        .args([
            "--headless",
            "--infilter=HTML (StarWriter)",
            "--convert-to",
            "docx:MS Word 2007 XML",
            "--outdir",
        ])
        .arg(dir.path())
        .arg(&html)
        .env("HOME", dir.path())
        .output()
        .expect("run soffice");
    let docx = dir.path().join("ke-hoach.docx");
    assert!(
        docx.exists(),
        "soffice made no .docx: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The .docx has what the test is about: merged cells both ways.
    let mut xml = String::new();
    std::io::Read::read_to_string(
        &mut zip::ZipArchive::new(std::fs::File::open(&docx).unwrap())
            .unwrap()
            .by_name("word/document.xml")
            .unwrap(),
        &mut xml,
    )
    .unwrap();
    for tag in ["<w:gridSpan", "<w:vMerge", "<w:tbl>"] {
        assert!(xml.contains(tag), "no {tag} in the .docx");
    }
    let from_docx = yaml(&import(&docx));
    let from_text = yaml(&import(&seed_text()));
    for k in ["plan", "sections"] {
        assert_eq!(from_docx[k], from_text[k], "{k}");
    }
    let (d, t) = (
        from_docx["tasks"].as_array().unwrap(),
        from_text["tasks"].as_array().unwrap(),
    );
    assert_eq!(d.len(), t.len());
    for (d, t) in d.iter().zip(t) {
        assert_eq!(d, t);
    }
}

/// A file that is not there is said so in Vietnamese by default, in English on request.
#[test]
fn a_missing_file_is_explained_in_the_chosen_language() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("khong-co.docx");
    let run = |lang: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nhacviec"));
        c.args(["import", missing.to_str().unwrap()])
            .env_remove("NHACVIEC_CONFIG")
            .env_remove("NHACVIEC_LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG");
        if let Some(l) = lang {
            c.env("NHACVIEC_LANG", l);
        }
        let out = c.output().expect("run nhacviec");
        assert_ne!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let vi = run(None);
    assert!(
        vi.contains("không mở được") && vi.contains("khong-co.docx"),
        "{vi}"
    );
    assert!(!vi.contains("cannot open"), "{vi}");
    let en = run(Some("en"));
    assert!(
        en.contains("cannot open") && en.contains("khong-co.docx"),
        "{en}"
    );
    // A text file with no appendix table.
    let empty = dir.path().join("trong.txt");
    std::fs::write(&empty, "Không có bảng nào ở đây.\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nhacviec"))
        .args(["import", empty.to_str().unwrap()])
        .env("NHACVIEC_LANG", "vi")
        .output()
        .unwrap();
    let vi = String::from_utf8_lossy(&out.stderr);
    assert!(vi.contains("không tìm thấy bảng phụ lục"), "{vi}");
}
