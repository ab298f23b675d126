//! Month and day names of a non-English locale, for Joda's text fields (`MMM`, `MMMM`,
//! `EEE`, `EEEE`) read under the date filter's `locale`.
//!
//! Logstash takes a Java locale tag (`fr`, `fr-FR`, `de_DE`, `pt-BR`) and reads names
//! from Java's CLDR data; the names here come from the GNU C library's locales (through
//! `pure-rust-locales`), widened with the dotted abbreviations CLDR writes (`janv.`,
//! `avr.`, `Okt.`) so that text a Java program printed parses too. English keeps its
//! own built-in table: this module is only consulted when a pattern has a locale.

use pure_rust_locales::{locale_match, Locale};

/// The names of one locale, lowercased, each with its value (month 0-11, day 0-6
/// Monday first), longest first so that the first match is the longest one, as Joda
/// takes the longest name that fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocaleNames {
    months: Vec<(String, u8)>,
    days: Vec<(String, u8)>,
}

/// A locale tag that names no locale with date names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown locale `{0}`; expected a language tag such as \"en\", \"fr\", \"fr-FR\" or \"de_DE\""
)]
pub struct UnknownLocale(pub String);

/// Java's old language codes, which Java still accepts, and the codes the C library uses.
const LANGUAGE_ALIASES: [(&str, &str); 4] =
    [("iw", "he"), ("in", "id"), ("ji", "yi"), ("no", "nb")];

/// The region a bare language reads as where `xx_XX` is not the usual one.
const LANGUAGE_REGIONS: [(&str, &str); 10] = [
    ("ar", "EG"),
    ("ca", "ES"),
    ("cs", "CZ"),
    ("da", "DK"),
    ("el", "GR"),
    ("ja", "JP"),
    ("ko", "KR"),
    ("sr", "RS"),
    ("sv", "SE"),
    ("zh", "CN"),
];

impl LocaleNames {
    /// Resolves a Java (BCP 47 or POSIX) locale tag. `Ok(None)` means English, which
    /// the caller reads with its built-in names.
    pub fn for_tag(tag: &str) -> Result<Option<LocaleNames>, UnknownLocale> {
        let unknown = || UnknownLocale(tag.to_string());
        // POSIX tags may carry an encoding (`de_DE.UTF-8`); it does not change names.
        let base = tag.split('.').next().unwrap_or(tag);
        let (base, modifier) = match base.split_once('@') {
            Some((b, m)) => (b, Some(m)),
            None => (base, None),
        };
        let mut parts = base.split(['-', '_']);
        let language = parts.next().unwrap_or("").to_ascii_lowercase();
        if language == "root" || language == "und" || language == "en" {
            return Ok(None);
        }
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(unknown());
        }
        let language = LANGUAGE_ALIASES
            .iter()
            .find(|(old, _)| *old == language)
            .map_or(language.clone(), |(_, new)| new.to_string());
        let mut region = None;
        let mut latin = modifier == Some("latin");
        for part in parts {
            match part.len() {
                4 if part.eq_ignore_ascii_case("latn") => latin = true,
                4 => {}
                2 if region.is_none() => region = Some(part.to_ascii_uppercase()),
                _ => {}
            }
        }
        let mut candidates = Vec::new();
        if let Some(region) = &region {
            if latin {
                candidates.push(format!("{language}_{region}@latin"));
            }
            if let Some(m) = modifier {
                candidates.push(format!("{language}_{region}@{m}"));
            }
            candidates.push(format!("{language}_{region}"));
        }
        // A bare language, or a region the C library has no locale for (Java still
        // gives the language's names for `fr-US`).
        if let Some((_, r)) = LANGUAGE_REGIONS.iter().find(|(l, _)| *l == language) {
            candidates.push(format!("{language}_{r}"));
        }
        candidates.push(format!("{language}_{}", language.to_ascii_uppercase()));
        candidates.push(language.clone());
        let locale = candidates
            .iter()
            .find_map(|c| Locale::try_from(c.as_str()).ok())
            .or_else(|| {
                // Any region of that language, in a fixed order.
                (b'A'..=b'Z')
                    .flat_map(|a| (b'A'..=b'Z').map(move |b| [a, b]))
                    .find_map(|r| {
                        let r = std::str::from_utf8(&r).ok()?;
                        Locale::try_from(format!("{language}_{r}").as_str()).ok()
                    })
            })
            .ok_or_else(unknown)?;
        Ok(Some(LocaleNames::of(locale)))
    }

    fn of(locale: Locale) -> LocaleNames {
        let full_months = locale_match!(locale => LC_TIME::MON);
        let mut months = Vec::new();
        let mut add_months = |names: &[&str], dotted: bool| {
            for (i, name) in names.iter().enumerate() {
                push_name(&mut months, name, i as u8, dotted);
            }
        };
        add_months(full_months, false);
        add_months(locale_match!(locale => LC_TIME::ABMON), true);
        if let Some(alt) = locale_match!(locale => LC_TIME::ALT_MON) {
            add_months(alt, false);
        }
        if let Some(alt) = locale_match!(locale => LC_TIME::AB_ALT_MON) {
            add_months(alt, true);
        }
        add_dotted_prefixes(&mut months, full_months);

        let full_days = locale_match!(locale => LC_TIME::DAY);
        let mut days = Vec::new();
        // The C library lists days from Sunday; Joda counts from Monday.
        let monday_first = |i: usize| ((i + 6) % 7) as u8;
        for (i, name) in full_days.iter().enumerate() {
            push_name(&mut days, name, monday_first(i), false);
        }
        for (i, name) in locale_match!(locale => LC_TIME::ABDAY).iter().enumerate() {
            push_name(&mut days, name, monday_first(i), true);
        }
        let monday_first_days: Vec<&str> = (0..7).map(|i| full_days[(i + 1) % 7]).collect();
        add_dotted_prefixes(&mut days, &monday_first_days);

        for table in [&mut months, &mut days] {
            // Longest first; equal lengths in order so that duplicates sit together.
            table.sort_by(|a, b| {
                b.0.chars()
                    .count()
                    .cmp(&a.0.chars().count())
                    .then_with(|| a.cmp(b))
            });
            table.dedup();
        }
        LocaleNames { months, days }
    }

    /// Reads a month name at the start of `text`: (bytes read, month 1-12).
    pub fn month(&self, text: &str) -> Option<(usize, u32)> {
        longest(&self.months, text).map(|(n, v)| (n, u32::from(v) + 1))
    }

    /// Reads a day name at the start of `text`: bytes read.
    pub fn day(&self, text: &str) -> Option<usize> {
        longest(&self.days, text).map(|(n, _)| n)
    }
}

/// Lowercases char by char, the way text is compared, so that both sides agree
/// (a final Greek sigma, for one, lowercases differently in a whole string).
fn lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Adds a name; an abbreviation is also read with its trailing dot added or removed,
/// since CLDR (Java) and the C library disagree on it (`janv.`/`janv`, `Jan`/`Jan.`).
fn push_name(table: &mut Vec<(String, u8)>, name: &str, value: u8, abbreviation: bool) {
    let name = lower(name.trim());
    if name.is_empty() {
        return;
    }
    if abbreviation {
        match name.strip_suffix('.') {
            Some(bare) if !bare.is_empty() => table.push((bare.to_string(), value)),
            Some(_) => {}
            None => table.push((format!("{name}."), value)),
        }
    }
    table.push((name, value));
}

/// CLDR abbreviates by cutting a full name and adding a dot (`avr.`, `juil.`, `sept.`,
/// `Okt.`); accepts each such cut of at least three letters that names one value only.
fn add_dotted_prefixes(table: &mut Vec<(String, u8)>, full: &[&str]) {
    let full: Vec<Vec<char>> = full.iter().map(|n| lower(n).chars().collect()).collect();
    for (value, name) in full.iter().enumerate() {
        for len in 3..name.len() {
            let prefix = &name[..len];
            let unique = full
                .iter()
                .enumerate()
                .all(|(other, n)| other == value || !n.starts_with(prefix));
            if unique {
                let mut cut: String = prefix.iter().collect();
                cut.push('.');
                table.push((cut, value as u8));
            }
        }
    }
}

/// The longest name of `table` that `text` starts with, compared case-insensitively.
fn longest(table: &[(String, u8)], text: &str) -> Option<(usize, u8)> {
    table
        .iter()
        .find_map(|(name, value)| starts_with_lowercase(text, name).map(|n| (n, *value)))
}

/// Bytes of `text` that lowercase to exactly `name`, if `text` starts so.
fn starts_with_lowercase(text: &str, name: &str) -> Option<usize> {
    let mut want = name.chars();
    for (at, c) in text.char_indices() {
        for l in c.to_lowercase() {
            if want.next() != Some(l) {
                return None;
            }
        }
        if want.as_str().is_empty() {
            return Some(at + c.len_utf8());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(tag: &str) -> LocaleNames {
        LocaleNames::for_tag(tag).unwrap().expect("not English")
    }

    #[test]
    fn java_tags_resolve() {
        for tag in ["fr", "fr-FR", "fr_FR", "fr-CA", "fr_FR.UTF-8", "FR-fr"] {
            assert_eq!(names(tag).month("juillet"), Some((7, 7)), "{tag}");
        }
        assert_eq!(names("de").month("März"), Some(("März".len(), 3)));
        assert_eq!(names("pt-BR").month("março"), Some(("março".len(), 3)));
        assert_eq!(names("sv").month("maj"), Some((3, 5)));
        assert_eq!(names("sr-Latn-RS").month("jun"), Some((3, 6)));
        for english in ["en", "en-US", "en_GB", "root"] {
            assert_eq!(LocaleNames::for_tag(english), Ok(None), "{english}");
        }
        for bad in ["xx", "klingon", "", "12", "zz-ZZ"] {
            assert_eq!(
                LocaleNames::for_tag(bad),
                Err(UnknownLocale(bad.to_string()))
            );
        }
    }

    #[test]
    fn names_match_case_insensitively_longest_first() {
        let fr = names("fr");
        assert_eq!(fr.month("JANVIER 2020"), Some((7, 1)));
        assert_eq!(fr.month("janv. 2020"), Some((5, 1)));
        assert_eq!(fr.month("Févr."), Some(("Févr.".len(), 2)));
        assert_eq!(fr.month("avr."), Some((4, 4)), "CLDR's cut of avril");
        assert_eq!(fr.month("juil."), Some((5, 7)));
        assert_eq!(fr.month("jui."), None, "juin or juillet");
        assert_eq!(fr.month("foo"), None);
        assert_eq!(fr.day("Lundi 3"), Some(5));
        assert_eq!(fr.day("lun. 3"), Some(4));
        let de = names("de-DE");
        assert_eq!(de.month("Okt."), Some((4, 10)));
        assert_eq!(de.month("Dez"), Some((3, 12)));
        let ru = names("ru");
        assert_eq!(ru.month("Января"), Some(("Января".len(), 1)));
        assert_eq!(ru.month("январь"), Some(("январь".len(), 1)));
    }
}
