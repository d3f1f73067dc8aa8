//! Two languages, Vietnamese first: which one speaks (chosen once per process) and the
//! macros [`tr!`](crate::tr) and [`t!`](crate::t) that hold every message in both, side by side.

use std::cell::Cell;
use std::sync::OnceLock;

/// A language the messages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    /// `vi`, `en`, or a locale naming one of them (`vi_VN.UTF-8`, `en-US`); `C`, `POSIX`
    /// and other languages are `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim();
        let code: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_lowercase();
        match code.as_str() {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The code written in a config and on `--lang`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }
}

/// The process's language, once it is settled (see [`settle`]).
static CHOSEN: OnceLock<Lang> = OnceLock::new();
/// What `--lang` and the environment say, before the config is read (`None`: they are silent).
static EARLY: OnceLock<Option<Lang>> = OnceLock::new();

thread_local! {
    /// A language for this thread only, over the process's one (tests of both languages).
    static SCOPED: Cell<Option<Lang>> = const { Cell::new(None) };
}

/// The language the messages speak now.
pub fn lang() -> Lang {
    if let Some(l) = SCOPED.with(Cell::get) {
        return l;
    }
    if let Some(&l) = CHOSEN.get() {
        return l;
    }
    EARLY.get().copied().flatten().unwrap_or(Lang::Vi)
}

/// The choice before any config is read: `--lang`, else `NHACVIEC_LANG`, else `LC_ALL`,
/// `LC_MESSAGES`, `LANG` (the first set one that names `vi` or `en`).
pub fn choose_early(flag: Option<Lang>, var: impl Fn(&str) -> Option<String>) -> Option<Lang> {
    flag.or_else(|| {
        ["NHACVIEC_LANG", "LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|name| var(name).and_then(|v| Lang::parse(&v)))
    })
}

/// The whole chain: the early choice, else the config's `language:`, else Vietnamese.
pub fn choose(early: Option<Lang>, config: Option<Lang>) -> Lang {
    early.or(config).unwrap_or(Lang::Vi)
}

/// Called once at start by the command line with `--lang` (if given): reads the environment.
pub fn init(flag: Option<Lang>) {
    let early = choose_early(flag, |name| std::env::var(name).ok());
    let _ = EARLY.set(early);
}

/// Settles the language with the config's `language:` (the first config read decides; a
/// later reload does not change it). Does nothing unless [`init`] ran, so a library user
/// (and the tests) keep [`lang`]'s answer.
pub fn settle(config: Option<Lang>) {
    if let Some(&early) = EARLY.get() {
        let _ = CHOSEN.set(choose(early, config));
    }
}

/// Fixes the process's language outright (a test binary that asserts one language's words).
pub fn force(lang: Lang) {
    let _ = CHOSEN.set(lang);
}

/// Sets (or with `None` clears) this thread's language (a test that asserts one language's
/// words says so first; [`scoped`] when only part of it should).
pub fn set_for_thread(lang: Option<Lang>) {
    SCOPED.with(|s| s.set(lang));
}

/// Runs `f` with `lang` on this thread.
pub fn scoped<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    let before = SCOPED.with(|s| s.replace(Some(lang)));
    let out = f();
    SCOPED.with(|s| s.set(before));
    out
}

/// A message in both languages, formatted like `format!` (`{name}` placeholders, inline or
/// named): `tr!("lỗi ở {n}", "error at {n}")`. Both texts are required, so a message without
/// a language does not compile, and an argument one text forgets is a compile error too.
#[macro_export]
macro_rules! tr {
    ($vi:literal, $en:literal $(,)?) => {
        match $crate::i18n::lang() {
            $crate::i18n::Lang::Vi => format!($vi),
            $crate::i18n::Lang::En => format!($en),
        }
    };
    ($vi:literal, $en:literal, $($arg:tt)+) => {
        match $crate::i18n::lang() {
            $crate::i18n::Lang::Vi => format!($vi, $($arg)+),
            $crate::i18n::Lang::En => format!($en, $($arg)+),
        }
    };
}

/// A fixed word or label in both languages, as a `&'static str`: `t!("đã gửi", "sent")`.
#[macro_export]
macro_rules! t {
    ($vi:literal, $en:literal $(,)?) => {
        match $crate::i18n::lang() {
            $crate::i18n::Lang::Vi => $vi,
            $crate::i18n::Lang::En => $en,
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_chain_is_flag_then_nhacviec_lang_then_locale_then_config_then_vietnamese() {
        let all = [
            ("NHACVIEC_LANG", "en"),
            ("LC_ALL", "vi_VN.UTF-8"),
            ("LC_MESSAGES", "en_US.UTF-8"),
            ("LANG", "vi_VN.UTF-8"),
        ];
        let pick = |flag, vars: &[(&str, &str)], cfg| choose(choose_early(flag, env(vars)), cfg);
        assert_eq!(pick(Some(Lang::Vi), &all, Some(Lang::En)), Lang::Vi);
        assert_eq!(pick(None, &all, Some(Lang::Vi)), Lang::En);
        assert_eq!(pick(None, &all[1..], Some(Lang::En)), Lang::Vi);
        assert_eq!(pick(None, &all[2..], Some(Lang::Vi)), Lang::En);
        assert_eq!(pick(None, &all[3..], Some(Lang::En)), Lang::Vi);
        assert_eq!(pick(None, &[], Some(Lang::En)), Lang::En);
        assert_eq!(pick(None, &[], None), Lang::Vi);
        // C and POSIX, or another language, name neither: the next in the chain decides.
        let c = [
            ("LC_ALL", "C"),
            ("LC_MESSAGES", "POSIX"),
            ("LANG", "en_GB.UTF-8"),
        ];
        assert_eq!(pick(None, &c, None), Lang::En);
        let fr = [("NHACVIEC_LANG", "fr"), ("LANG", "C.UTF-8")];
        assert_eq!(pick(None, &fr, Some(Lang::En)), Lang::En);
    }

    #[test]
    fn both_texts_are_there_and_the_scope_picks_one() {
        let n = 3;
        let say = || tr!("{n} lỗi", "{n} error(s)");
        assert_eq!(scoped(Lang::Vi, say), "3 lỗi");
        assert_eq!(scoped(Lang::En, say), "3 error(s)");
        assert_eq!(scoped(Lang::En, || t!("đã gửi", "sent")), "sent");
    }
}
