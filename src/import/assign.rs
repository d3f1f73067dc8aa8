//! The Phân công column: who leads and who cooperates, read from phrases such as "X chủ trì,
//! Y phối hợp", "X phối hợp Y thực hiện" (X leads), "X tham mưu …", and matched to office ids.

use unicode_normalization::UnicodeNormalization;

/// NFC, lowercase, old-style tone marks moved (`uỷ` → `ủy`), every dash one `-` without
/// spaces around it, one space between words.
pub fn normalize(s: &str) -> String {
    static OLD_TONES: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(uỷ|uý|oà|oá|oả|oã|oạ)\b").expect("regex"));
    let t: String = s.nfc().collect::<String>().to_lowercase();
    // Only at the end of a word: "hoà" is "hòa", "soát" stays.
    let t = OLD_TONES.replace_all(&t, |c: &regex::Captures| {
        match &c[1] {
            "uỷ" => "ủy",
            "uý" => "úy",
            "oà" => "òa",
            "oá" => "óa",
            "oả" => "ỏa",
            "oã" => "õa",
            _ => "ọa",
        }
        .to_string()
    });
    let t: String = t
        .chars()
        .map(|c| match c {
            '–' | '—' | '‐' | '‑' | '‒' | '−' => '-',
            c => c,
        })
        .collect();
    let words = t.split_whitespace().collect::<Vec<_>>().join(" ");
    words
        .replace(" - ", "-")
        .replace(" -", "-")
        .replace("- ", "-")
}

/// ASCII, lowercase, words joined by `-`: how office and group ids are written.
pub fn slug(s: &str) -> String {
    let t: String = normalize(s)
        .replace('đ', "d")
        .nfd()
        .filter(|c| c.is_ascii())
        .collect();
    let mut out = String::new();
    for c in t.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A word or punctuation mark of a Phân công text: `norm` for matching, `start..end` the
/// bytes of the original text it covers.
#[derive(Debug, Clone)]
struct Tok {
    norm: String,
    start: usize,
    end: usize,
}

fn tokenize(s: &str) -> Vec<Tok> {
    let mut toks: Vec<Tok> = Vec::new();
    let mut word_start: Option<usize> = None;
    let is_dash = |c: char| matches!(c, '-' | '–' | '—' | '‐' | '‑' | '‒' | '−');
    let push_word = |toks: &mut Vec<Tok>, a: usize, b: usize| {
        toks.push(Tok {
            norm: normalize(&s[a..b]),
            start: a,
            end: b,
        })
    };
    for (i, c) in s.char_indices() {
        let punct = matches!(c, ',' | ';' | '.' | '(' | ')' | ':');
        if c.is_whitespace() || punct || is_dash(c) {
            if let Some(a) = word_start.take() {
                push_word(&mut toks, a, i);
            }
            if punct || is_dash(c) {
                toks.push(Tok {
                    norm: if is_dash(c) {
                        "-".into()
                    } else {
                        c.to_string()
                    },
                    start: i,
                    end: i + c.len_utf8(),
                });
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    if let Some(a) = word_start {
        push_word(&mut toks, a, s.len());
    }
    // "Hành chính – Tổ chức", "HC-TC": a dash joins the words on either side into one.
    let mut out: Vec<Tok> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i].norm == "-"
            && let Some(prev) = out.last_mut()
            && i + 1 < toks.len()
            && toks[i + 1].norm.chars().all(char::is_alphanumeric)
            && prev.norm.chars().last().is_some_and(char::is_alphanumeric)
        {
            prev.norm = format!("{}-{}", prev.norm, toks[i + 1].norm);
            prev.end = toks[i + 1].end;
            i += 2;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

fn words(s: &str) -> Vec<String> {
    tokenize(s).into_iter().map(|t| t.norm).collect()
}

/// Long forms and the abbreviations plans use for them, both ways.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("hành chính-tổ chức", "hc-tc"),
    ("kiểm soát thủ tục hành chính", "kstthc"),
    ("thủ tục hành chính", "tthc"),
    ("quản trị-tài vụ", "qt-tv"),
    ("ủy ban nhân dân", "ubnd"),
    ("hội đồng nhân dân", "hđnd"),
    ("thông tin và truyền thông", "tt&tt"),
    ("thông tin và truyền thông", "tttt"),
    ("văn phòng", "vp"),
];

/// The offices and groups of a config, with the names and abbreviations that point to them.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// (alias words, id), longest alias first.
    aliases: Vec<(Vec<String>, String)>,
    groups: Vec<String>,
    added: usize,
}

impl Catalog {
    /// `offices`: (id, name) in file order; `groups`: group ids.
    pub fn new(offices: &[(String, String)], groups: &[String]) -> Self {
        let mut aliases = Vec::new();
        for (id, name) in offices {
            let n = normalize(name);
            let mut forms = vec![n.clone()];
            if let Some(rest) = n.strip_prefix("phòng ") {
                forms.push(rest.to_string());
            }
            // Each abbreviation applied both ways, one at a time and all together.
            let mut more = Vec::new();
            for f in &forms {
                let mut all_short = f.clone();
                let mut all_long = f.clone();
                for (long, short) in ABBREVIATIONS {
                    more.push(f.replace(long, short));
                    more.push(replace_word(f, short, long));
                    all_short = all_short.replace(long, short);
                    all_long = replace_word(&all_long, short, long);
                }
                more.push(all_short);
                more.push(all_long);
            }
            forms.extend(more);
            forms.sort();
            forms.dedup();
            for f in forms {
                let w = words(&f);
                if !w.is_empty() {
                    aliases.push((w, id.clone()));
                }
            }
        }
        aliases.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        Catalog {
            aliases,
            groups: groups.to_vec(),
            added: 0,
        }
    }

    /// Adds offices (id, name) found in the document, e.g. proposed new ones.
    pub fn add_offices(&mut self, offices: &[(String, String)]) {
        let more = Catalog::new(offices, &[]);
        self.aliases.extend(more.aliases);
        self.aliases
            .sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
        self.added += offices.len();
    }

    /// How many offices [`Catalog::add_offices`] added.
    pub fn proposed(&self) -> usize {
        self.added
    }

    pub fn has_group(&self, id: &str) -> bool {
        self.groups.iter().any(|g| g == id)
    }
}

/// `from` replaced by `to` where it is a whole word.
fn replace_word(s: &str, from: &str, to: &str) -> String {
    s.split(' ')
        .map(|w| if w == from { to } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a mention in a Phân công text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mention {
    /// A config office or group id.
    Known(String),
    /// A group id read from a loose phrase ("các đơn vị"): confirm.
    Guessed { id: String, phrase: String },
    /// "các cơ quan, đơn vị liên quan": no office named.
    Vague(String),
    /// An office not in the config: its name as written.
    Unknown(String),
}

/// The offices a Phân công text gives a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub lead: Vec<Mention>,
    pub cooperating: Vec<Mention>,
    /// Config offices named elsewhere in the text (recipients, appraisers): not cooperating.
    pub also_named: Vec<String>,
}

/// Loose phrases for groups: (phrase slug, group id, certain).
const GROUP_PHRASES: &[(&str, &str, bool)] = &[
    ("cac-phong-chuyen-mon", "cac-phong", true),
    ("cac-phong-ban-trung-tam", "cac-phong-ban-trung-tam", true),
    (
        "cac-phong-ban-va-trung-tam",
        "cac-phong-ban-trung-tam",
        true,
    ),
    ("cac-don-vi", "cac-phong-ban-trung-tam", false),
];

/// Words that start what an office does, ending its name.
const VERBS: &[&str] = &[
    "chủ trì",
    "phối hợp",
    "thực hiện",
    "triển khai",
    "tham mưu",
    "tổng hợp",
    "xây dựng",
    "rà soát",
    "hướng dẫn",
    "theo dõi",
    "báo cáo",
    "trình",
    "gửi",
];

/// Words that begin the name of an office the config may not know.
const OFFICE_HEADS: &[&str] = &[
    "phòng",
    "sở",
    "bộ",
    "trung tâm",
    "ban",
    "văn phòng",
    "ủy ban",
    "ubnd",
    "cục",
    "chi cục",
    "hội đồng",
    "đảng ủy",
    "công an",
    "kho bạc",
];

fn starts_with_phrase(toks: &[Tok], i: usize, phrase: &str) -> bool {
    let w: Vec<&str> = phrase.split(' ').collect();
    toks.len() >= i + w.len() && w.iter().enumerate().all(|(k, x)| toks[i + k].norm == *x)
}

fn verb_at(toks: &[Tok], i: usize) -> bool {
    VERBS.iter().any(|v| starts_with_phrase(toks, i, v))
}

fn find(toks: &[Tok], from: usize, phrase: &str) -> Option<usize> {
    (from..toks.len()).find(|&i| starts_with_phrase(toks, i, phrase))
}

/// A list of offices from `i`: names separated by commas and "và"/"với", up to the first
/// word that is not part of one. Returns the mentions and where the list ends.
fn list(text: &str, toks: &[Tok], mut i: usize, cat: &Catalog) -> (Vec<Mention>, usize) {
    let mut out = Vec::new();
    let mut end = i;
    loop {
        while i < toks.len() && matches!(toks[i].norm.as_str(), "," | "và" | "với" | ";") {
            i += 1;
        }
        if i >= toks.len() {
            break;
        }
        // A config office by one of its names.
        if let Some((w, id)) = cat.aliases.iter().find(|(w, _)| {
            toks.len() >= i + w.len() && w.iter().enumerate().all(|(k, x)| toks[i + k].norm == *x)
        }) {
            out.push(Mention::Known(id.clone()));
            i += w.len();
            end = i;
            continue;
        }
        if toks[i].norm == "các" {
            // A group: the longest run of words whose slug is a group id or a known phrase.
            let mut best = None;
            let mut j = i + 1;
            while j < toks.len() && j < i + 9 && !verb_at(toks, j) && toks[j].norm != "." {
                j += 1;
                let s = slug(&text[toks[i].start..toks[j - 1].end]);
                if cat.has_group(&s) {
                    best = Some((j, Mention::Known(s)));
                } else if let Some((_, id, certain)) = GROUP_PHRASES
                    .iter()
                    .find(|(p, id, _)| *p == s && cat.has_group(id))
                {
                    let phrase = text[toks[i].start..toks[j - 1].end].to_string();
                    best = Some((
                        j,
                        if *certain {
                            Mention::Known(id.to_string())
                        } else {
                            Mention::Guessed {
                                id: id.to_string(),
                                phrase,
                            }
                        },
                    ));
                }
            }
            if let Some((j, m)) = best {
                out.push(m);
                i = j;
                end = i;
                continue;
            }
            // Otherwise a loose phrase ("các cơ quan, đơn vị liên quan"): up to the verb.
            let mut j = i + 1;
            while j < toks.len() && !verb_at(toks, j) && toks[j].norm != "." {
                j += 1;
            }
            let s = text[toks[i].start..toks[j - 1].end]
                .trim_end_matches(',')
                .trim();
            out.push(Mention::Vague(s.to_string()));
            i = j;
            end = i;
            continue;
        }
        if let Some(head) = OFFICE_HEADS.iter().find(|h| starts_with_phrase(toks, i, h)) {
            // The word after the head is the name's, even when it could be a verb
            // ("Sở Xây dựng").
            let mut j = (i + head.split(' ').count() + 1).min(toks.len());
            // "và" inside a name ("Thông tin và Truyền thông") is part of it; before
            // another office's name it separates the two.
            let name_ends = |j: usize| {
                verb_at(toks, j)
                    || matches!(toks[j].norm.as_str(), "," | ";" | "." | "(" | ")" | "với")
                    || (toks[j].norm == "và"
                        && OFFICE_HEADS
                            .iter()
                            .any(|h| starts_with_phrase(toks, j + 1, h)))
            };
            while j < toks.len() && !name_ends(j) {
                j += 1;
            }
            out.push(Mention::Unknown(
                text[toks[i].start..toks[j - 1].end].to_string(),
            ));
            i = j;
            end = i;
            continue;
        }
        break;
    }
    (out, end)
}

/// Reads a Phân công text.
pub fn parse(text: &str, cat: &Catalog) -> Assignment {
    let toks = tokenize(text);
    let (lead, lead_end) = list(text, &toks, 0, cat);
    let mut cooperating = Vec::new();
    let skip = |mut i: usize| {
        while i < toks.len() && matches!(toks[i].norm.as_str(), "," | "với") {
            i += 1;
        }
        i
    };
    let chu_tri = find(&toks, lead_end, "chủ trì");
    let phoi_hop = find(&toks, lead_end, "phối hợp");
    let mut coop_end = lead_end;
    match (chu_tri, phoi_hop) {
        // "X chủ trì, Y phối hợp" or "X chủ trì, phối hợp Y".
        (Some(c), p) if c == lead_end || toks[lead_end..c].iter().all(|t| t.norm == ",") => {
            let after = skip(c + 2);
            let (before_ph, e) = list(text, &toks, after, cat);
            if !before_ph.is_empty() && starts_with_phrase(&toks, e, "phối hợp") {
                cooperating = before_ph;
                coop_end = e + 2;
            } else if let Some(p) = p {
                let (l, e) = list(text, &toks, skip(p + 2), cat);
                cooperating = l;
                coop_end = e;
            }
        }
        // "X phối hợp Y thực hiện": X leads, Y cooperates.
        (_, Some(p)) if p == lead_end => {
            let (l, e) = list(text, &toks, skip(p + 2), cat);
            cooperating = l;
            coop_end = e;
        }
        _ => {}
    }
    // Config offices named in the rest of the text: recipients, appraisers.
    let mut also_named = Vec::new();
    let mut i = coop_end.max(lead_end);
    while i < toks.len() {
        if let Some((len, id)) = alias_at(&toks, i, cat) {
            let id = id.to_string();
            let taken = lead
                .iter()
                .chain(&cooperating)
                .any(|m| *m == Mention::Known(id.clone()));
            if !taken && !also_named.contains(&id) {
                also_named.push(id);
            }
            i += len;
        } else {
            i += 1;
        }
    }
    Assignment {
        lead,
        cooperating,
        also_named,
    }
}

/// The catalog office whose name (or a form of it) starts at token `i`, the longest
/// first, with its length in tokens.
fn alias_at<'c>(toks: &[Tok], i: usize, cat: &'c Catalog) -> Option<(usize, &'c str)> {
    cat.aliases
        .iter()
        .find(|(w, _)| {
            toks.len() >= i + w.len() && w.iter().enumerate().all(|(k, x)| toks[i + k].norm == *x)
        })
        .map(|(w, id)| (w.len(), id.as_str()))
}

/// The catalog offices a text sends the result to: named right after "gửi" ("gửi Sở Nội vụ
/// thẩm định", "báo cáo gửi Sở Nội vụ", "gửi về …"). They receive or appraise the result:
/// the task's `report_to:`, never reminded and never cooperating. Offices only submitted
/// to ("trình Ủy ban nhân dân tỉnh ban hành") are not among them: every plan ends there.
pub fn sent_to(text: &str, cat: &Catalog) -> Vec<String> {
    let toks = tokenize(text);
    let mut out: Vec<String> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.norm != "gửi" {
            continue;
        }
        let mut at = i + 1;
        if toks
            .get(at)
            .is_some_and(|t| matches!(t.norm.as_str(), "về" | "đến" | "tới" | "cho" | "lên"))
        {
            at += 1;
        }
        if let Some((_, id)) = alias_at(&toks, at, cat)
            && !out.iter().any(|o| o == id)
        {
            out.push(id.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat() -> Catalog {
        let o = |id: &str, name: &str| (id.to_string(), name.to_string());
        Catalog::new(
            &[
                o("hctc", "Phòng Hành chính – Tổ chức"),
                o("kstthc", "Phòng Kiểm soát thủ tục hành chính"),
                o("kinh-te", "Phòng Kinh tế"),
                o("qttv", "Phòng Quản trị – Tài vụ"),
                o("so-noi-vu", "Sở Nội vụ"),
                o("so-tu-phap", "Sở Tư pháp"),
                o("so-tttt", "Sở Thông tin và Truyền thông"),
                o("ubnd-tinh", "Ủy ban nhân dân tỉnh"),
            ],
            &["cac-phong".into(), "cac-phong-ban-trung-tam".into()],
        )
    }

    fn k(id: &str) -> Mention {
        Mention::Known(id.into())
    }

    #[test]
    fn lead_and_cooperating_forms() {
        let c = cat();
        let a = parse("Phòng HC-TC chủ trì, các phòng chuyên môn phối hợp", &c);
        assert_eq!(
            (a.lead, a.cooperating),
            (vec![k("hctc")], vec![k("cac-phong")])
        );
        let a = parse("Phòng Kiểm soát TTHC phối hợp Phòng Kinh tế thực hiện", &c);
        assert_eq!(
            (a.lead, a.cooperating),
            (vec![k("kstthc")], vec![k("kinh-te")])
        );
        let a = parse(
            "Phòng Kiểm soát TTHC chủ trì, phối hợp Sở Nội vụ, Sở Tư pháp hướng dẫn",
            &c,
        );
        assert_eq!(a.cooperating, vec![k("so-noi-vu"), k("so-tu-phap")]);
        let a = parse("Phòng Quản trị - Tài vụ tham mưu", &c);
        assert_eq!((a.lead, a.cooperating), (vec![k("qttv")], vec![]));
        let a = parse(
            "Phòng Kiểm soát TTHC, Hành chính – Tổ chức phối hợp các cơ quan, đơn vị liên quan triển khai thực hiện",
            &c,
        );
        assert_eq!(a.lead, vec![k("kstthc"), k("hctc")]);
        assert_eq!(
            a.cooperating,
            vec![Mention::Vague("các cơ quan, đơn vị liên quan".into())]
        );
    }

    #[test]
    fn recipients_are_not_cooperating() {
        let a = parse(
            "Phòng Hành chính – Tổ chức rà soát, hoàn thiện quy định gửi Sở Nội vụ thẩm định, trình Ủy ban nhân dân tỉnh ban hành",
            &cat(),
        );
        assert_eq!((a.lead, a.cooperating), (vec![k("hctc")], vec![]));
        assert_eq!(
            a.also_named,
            vec!["so-noi-vu".to_string(), "ubnd-tinh".to_string()]
        );
    }

    #[test]
    fn offices_sent_the_result_are_its_recipients() {
        let c = cat();
        assert_eq!(
            sent_to(
                "Phòng Hành chính – Tổ chức rà soát, hoàn thiện quy định gửi Sở Nội vụ thẩm định, trình Ủy ban nhân dân tỉnh ban hành",
                &c
            ),
            vec!["so-noi-vu".to_string()]
        );
        assert_eq!(
            sent_to(
                "Báo cáo kết quả thực hiện của Văn phòng UBND tỉnh gửi về Sở Nội vụ",
                &c
            ),
            vec!["so-noi-vu".to_string()]
        );
        // Submitted to, not sent: not a recipient.
        assert!(sent_to("tham mưu, trình Ủy ban nhân dân tỉnh xem xét", &c).is_empty());
        assert!(sent_to("gửi các cơ quan liên quan", &c).is_empty());
    }

    #[test]
    fn unknown_offices_and_loose_groups_are_flagged() {
        let a = parse(
            "Phòng Pháp chế chủ trì, phối hợp các đơn vị thực hiện",
            &cat(),
        );
        assert_eq!(a.lead, vec![Mention::Unknown("Phòng Pháp chế".into())]);
        assert_eq!(
            a.cooperating,
            vec![Mention::Guessed {
                id: "cac-phong-ban-trung-tam".into(),
                phrase: "các đơn vị".into()
            }]
        );
        let a = parse(
            "Sở Tài nguyên và Môi trường và Sở Xây dựng phối hợp",
            &Catalog::default(),
        );
        assert_eq!(
            a.lead,
            vec![
                Mention::Unknown("Sở Tài nguyên và Môi trường".into()),
                Mention::Unknown("Sở Xây dựng".into())
            ]
        );
    }

    #[test]
    fn normalisation_and_slugs() {
        assert_eq!(normalize("Quản trị – Tài vụ"), "quản trị-tài vụ");
        assert_eq!(normalize("Uỷ ban Khánh Hoà"), "ủy ban khánh hòa");
        assert_eq!(normalize("rà soát"), "rà soát");
        assert_eq!(slug("Phòng Pháp chế"), "phong-phap-che");
        assert_eq!(slug("các phòng, ban, trung tâm"), "cac-phong-ban-trung-tam");
    }
}
