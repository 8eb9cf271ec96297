//! Second opinions on the language pairs whatlang confuses most: letters that only one
//! language of a family uses (Cyrillic, Czech/Slovak, Turkish/Turkmen), and frequent
//! words that tell close neighbours apart (Russian/Bulgarian, Serbian/Macedonian,
//! Danish/Bokmål, Dutch/Afrikaans, Slovenian/Croatian, Catalan/Spanish).
//!
//! A rule only ever moves a label inside its family, and only on evidence in the text:
//! a letter the chosen language does not use, or clearly more marker words of the
//! other language. Measured on the developer sentence set (see benches/README.md).

/// Letters that settle a Cyrillic language (in the order they are checked).
fn cyrillic(text: &str, whatlang: &'static str) -> Option<&'static str> {
    let mut n = [0usize; 8];
    let mut letters = 0usize;
    for c in text.chars() {
        let i = match c {
            'ў' | 'Ў' => 0,
            'ђ' | 'Ђ' | 'ћ' | 'Ћ' => 1,
            'ѓ' | 'Ѓ' | 'ќ' | 'Ќ' | 'ѕ' | 'Ѕ' => 2,
            'ї' | 'Ї' | 'є' | 'Є' | 'ґ' | 'Ґ' => 3,
            'ы' | 'Ы' | 'э' | 'Э' | 'ё' | 'Ё' => 4,
            'і' | 'І' => 5,
            'ј' | 'Ј' | 'љ' | 'Љ' | 'њ' | 'Њ' | 'џ' | 'Џ' => 6,
            c if c.is_alphabetic() => 7,
            _ => continue,
        };
        n[i] += 1;
        letters += 1;
    }
    // A quoted name should not outvote the text: a letter counts from one in 500.
    let has = |i: usize| n[i] > letters / 500;
    Some(if has(0) {
        "be"
    } else if has(1) {
        "sr"
    } else if has(2) {
        "mk"
    } else if has(3) {
        "uk"
    } else if has(4) {
        if has(5) { "be" } else { "ru" }
    } else if has(5) {
        if whatlang == "be" { "be" } else { "uk" }
    } else if has(6) {
        // Both write ј, љ, њ, џ: the marker words decide between them.
        if whatlang == "mk" || whatlang == "sr" {
            return None;
        }
        "sr"
    } else {
        return None;
    })
}

/// Letters that only Czech or only Slovak uses, for text whatlang put among the West
/// and South Slavic Latin languages.
fn czech_slovak(text: &str) -> Option<&'static str> {
    let (mut cs, mut sk) = (0, 0);
    for c in text.chars() {
        match c {
            'ě' | 'Ě' | 'ř' | 'Ř' | 'ů' | 'Ů' => cs += 1,
            'ä' | 'Ä' | 'ô' | 'Ô' | 'ĺ' | 'Ĺ' | 'ľ' | 'Ľ' | 'ŕ' | 'Ŕ' => sk += 1,
            _ => {}
        }
    }
    match (cs, sk) {
        (0, 0) => None,
        (c, s) if c > 2 * s => Some("cs"),
        (c, s) if s > 2 * c => Some("sk"),
        _ => None,
    }
}

/// Turkish (dotless ı, ğ) against Turkmen (ä, ň, ý, ž) and Azerbaijani (ə). Turkish
/// decoded as Latin-1 instead of Windows-1254 (common on the web) shows ı as ý, ş as þ
/// and ğ as ð; þ and ð make the ý Turkish.
fn turkic(text: &str) -> Option<&'static str> {
    let (mut tr, mut tk, mut az, mut y, mut mojibake) = (0, 0, 0, 0, 0);
    for c in text.chars() {
        match c {
            'ı' | 'ğ' | 'Ğ' => tr += 1,
            'ä' | 'Ä' | 'ň' | 'Ň' | 'ž' | 'Ž' => tk += 1,
            'ý' | 'Ý' => y += 1,
            'þ' | 'Þ' | 'ð' | 'Ð' => mojibake += 1,
            'ə' | 'Ə' => az += 1,
            _ => {}
        }
    }
    if mojibake > 0 {
        tr += mojibake + y;
    } else {
        tk += y;
    }
    if az > 0 && az >= tk {
        Some("az")
    } else if tr > 2 * tk {
        Some("tr")
    } else if tk > 2 * tr {
        Some("tk")
    } else {
        None
    }
}

/// Two neighbours and the frequent words that only one of them writes that way.
struct Pair {
    langs: [&'static str; 2],
    /// whatlang answers that send a text to this pair.
    triggers: &'static [&'static str],
    words: [&'static [&'static str]; 2],
}

const PAIRS: &[Pair] = &[
    Pair {
        langs: ["da", "nb"],
        triggers: &["da", "nb"],
        words: [
            &[
                "af",
                "efter",
                "mig",
                "dig",
                "sig",
                "noget",
                "nogle",
                "nogen",
                "hvad",
                "havde",
                "bliver",
                "blev",
                "ud",
                "op",
                "nu",
                "meget",
                "lige",
                "hende",
                "jer",
                "gør",
                "gøre",
                "tilbage",
                "mellem",
                "uden",
                "mod",
                "os",
                "vores",
                "sådan",
                "måske",
                "end",
                "siger",
                "sagde",
                "fik",
                "mand",
                "kvinde",
                "lidt",
                "stadig",
                "give",
                "tage",
                "selvom",
                "derfor",
                "sammen",
                "spørgsmål",
                "gennem",
                "blive",
            ],
            &[
                "etter", "meg", "deg", "seg", "noe", "noen", "hva", "hadde", "blir", "ble", "ut",
                "opp", "nå", "mye", "henne", "dere", "gjør", "gjøre", "tilbake", "mellom", "uten",
                "mot", "oss", "vår", "våre", "slik", "kanskje", "enn", "sier", "sa", "fikk",
                "mann", "kvinne", "litt", "fortsatt", "veldig", "gi", "ta", "gjennom", "bli",
                "ikke", "nok",
            ],
        ],
    },
    Pair {
        langs: ["ru", "bg"],
        triggers: &["ru", "bg"],
        words: [
            &[
                "что",
                "это",
                "он",
                "она",
                "они",
                "был",
                "была",
                "было",
                "были",
                "его",
                "её",
                "ее",
                "к",
                "для",
                "уже",
                "только",
                "ещё",
                "еще",
                "когда",
                "меня",
                "мне",
                "который",
                "которые",
                "которая",
                "также",
                "если",
                "чтобы",
                "нет",
                "очень",
            ],
            &[
                "е",
                "са",
                "във",
                "със",
                "към",
                "това",
                "които",
                "който",
                "която",
                "ще",
                "беше",
                "бяха",
                "тя",
                "той",
                "те",
                "вече",
                "само",
                "когато",
                "ако",
                "няма",
                "много",
                "където",
                "трябва",
                "може",
                "след",
                "години",
                "български",
            ],
        ],
    },
    Pair {
        langs: ["sr", "mk"],
        triggers: &["sr", "mk"],
        words: [
            &[
                "је",
                "у",
                "су",
                "који",
                "која",
                "које",
                "није",
                "као",
                "био",
                "била",
                "са",
                "ће",
                "га",
                "ово",
                "јер",
                "из",
                "или",
                "само",
                "када",
                "године",
                "још",
            ],
            &[
                "е",
                "во",
                "кој",
                "кое",
                "бил",
                "со",
                "ќе",
                "го",
                "ги",
                "ова",
                "оваа",
                "овој",
                "тоа",
                "таа",
                "тој",
                "исто",
                "мора",
                "кога",
                "ние",
                "сите",
                "година",
                "уште",
            ],
        ],
    },
    Pair {
        langs: ["nl", "af"],
        triggers: &["nl", "af"],
        words: [
            &[
                "de", "niet", "zijn", "ik", "hij", "bij", "voor", "naar", "heeft", "hebben",
                "wordt", "worden", "zij", "ze", "mij", "wij", "jij", "zo", "zou", "zal", "door",
                "mensen", "een", "werd", "kunnen", "deze", "zich", "veel", "waar",
            ],
            &[
                "nie", "ek", "jy", "sy", "vir", "baie", "hulle", "julle", "sal", "deur", "oor",
                "mense", "wees", "nou", "se", "n", "sê", "gesê", "gewees", "kinders", "ons",
                "hierdie", "daardie", "wil", "moet", "kan", "ook",
            ],
        ],
    },
    Pair {
        langs: ["sl", "hr"],
        triggers: &["sl", "hr"],
        words: [
            &[
                "v", "in", "ki", "so", "tudi", "kot", "lahko", "še", "ter", "zelo", "kaj", "sem",
                "ni", "če", "kje", "kdo", "že", "ker", "bo", "bodo", "smo", "vse", "pri", "tem",
                "leta", "mu",
            ],
            &[
                "u", "i", "su", "koji", "koja", "koje", "kao", "što", "nije", "ako", "još",
                "također", "će", "gdje", "tko", "već", "jer", "ili", "sam", "bio", "bila", "biti",
                "nakon", "godine", "hrvatske",
            ],
        ],
    },
    Pair {
        langs: ["ca", "es"],
        triggers: &["ca", "es"],
        words: [
            &[
                "i", "amb", "els", "és", "més", "però", "aquest", "aquesta", "molt", "perquè",
                "també", "seva", "seu", "dels", "pel", "als", "hi", "ho", "ens", "va", "l", "d",
                "fer", "aquests", "quan", "on", "cap", "tot", "seus",
            ],
            &[
                "y", "con", "para", "los", "las", "por", "es", "más", "pero", "este", "esta",
                "muy", "porque", "también", "su", "sus", "como", "cuando", "donde", "lo", "le",
                "al", "ella", "hay", "fue",
            ],
        ],
    },
];

fn word_counts(text: &str, pair: &Pair) -> [usize; 2] {
    let mut hits = [0usize; 2];
    let mut lower = String::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        lower.clear();
        lower.extend(word.chars().flat_map(char::to_lowercase));
        for (side, words) in pair.words.iter().enumerate() {
            hits[side] += usize::from(words.contains(&lower.as_str()));
        }
    }
    hits
}

/// A better label for `text` than whatlang's `lang` when the text holds evidence for
/// it, with a confidence for the new label.
pub(super) fn second_opinion(text: &str, lang: &'static str) -> Option<(&'static str, f32)> {
    const CYRILLIC: &[&str] = &["ru", "uk", "be", "bg", "mk", "sr"];
    if CYRILLIC.contains(&lang)
        && let Some(l) = cyrillic(text, lang)
    {
        return (l != lang).then_some((l, 0.8));
    }
    if ["cs", "sk", "sl", "hr", "pl"].contains(&lang)
        && let Some(l) = czech_slovak(text).filter(|l| *l != lang)
    {
        return Some((l, 0.8));
    }
    if ["tr", "tk", "az"].contains(&lang) {
        return turkic(text).filter(|l| *l != lang).map(|l| (l, 0.8));
    }
    for pair in PAIRS.iter().filter(|p| p.triggers.contains(&lang)) {
        let hits = word_counts(text, pair);
        for (side, other) in [(0usize, 1usize), (1, 0)] {
            let (win, lose) = (hits[side], hits[other]);
            if pair.langs[side] != lang && win >= 2 && win > 2 * lose {
                let confidence = (0.5 + 0.1 * (win - lose) as f32).min(1.0);
                return Some((pair.langs[side], confidence));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_settle_cyrillic_languages() {
        assert_eq!(cyrillic("Мы были в парке", "bg"), Some("ru"));
        assert_eq!(cyrillic("Ми їхали додому", "ru"), Some("uk"));
        assert_eq!(cyrillic("Мы ўсе былі тут", "ru"), Some("be"));
        assert_eq!(cyrillic("Ова је ћерка", "mk"), Some("sr"));
        assert_eq!(cyrillic("Ова е ќерка", "sr"), Some("mk"));
        assert_eq!(cyrillic("Това е книга", "bg"), None);
        assert_eq!(
            second_opinion("Он сказал, что это была его книга.", "bg").map(|x| x.0),
            Some("ru")
        );
        assert_eq!(
            second_opinion("Той каза, че това е книга, която ще чете.", "ru").map(|x| x.0),
            Some("bg")
        );
        assert_eq!(cyrillic("Ова је књига", "sr"), None);
        assert_eq!(
            second_opinion("Ова је књига која је била у кући и није нова.", "mk").map(|x| x.0),
            Some("sr")
        );
        assert_eq!(
            second_opinion("Тоа е книга која ќе ја читам во градот.", "sr").map(|x| x.0),
            Some("mk")
        );
    }

    #[test]
    fn second_opinions_stay_inside_the_family() {
        assert_eq!(
            second_opinion("Jeg har ikke noe å si, men hva med deg etter skolen?", "da"),
            Some(("nb", 1.0))
        );
        assert_eq!(
            second_opinion("Ek het nie geweet dat hulle vir ons sal wag nie.", "nl").map(|x| x.0),
            Some("af")
        );
        assert_eq!(
            second_opinion("La casa és molt gran i també té un jardí amb flors.", "es")
                .map(|x| x.0),
            Some("ca")
        );
        assert_eq!(
            second_opinion("Příliš žluťoučký kůň úpěl ďábelské ódy.", "sk"),
            Some(("cs", 0.8))
        );
        assert_eq!(
            second_opinion("Bugün hava çok güzel ve ağaçlar yeşil.", "tk"),
            Some(("tr", 0.8))
        );
        // English and German are never moved.
        assert_eq!(
            second_opinion("Jeg har ikke noe å si, men hva med deg?", "de"),
            None
        );
        // No evidence, no change.
        assert_eq!(second_opinion("Han kommer i morgen.", "da"), None);
    }
}
