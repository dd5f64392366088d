//! What a buyer's message asks for, in their own words: seed 000's
//! commands (`confirm`, `cancel ord_123`, `upload`) and the way people
//! really write on WhatsApp: any case, punctuation and emoji, typos
//! ("confrim", "cancle"), an order reference anywhere in the text,
//! "yes"/"ok"/"I agree", "no"/"I don't want it again", "where is my
//! order", and Nigerian Pidgin ("abeg cancel am", "I don pay", "where my
//! market dey"). A message it cannot place is `Unknown`, never a guess.

use crate::reference::OrderReference;

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Go ahead with the order.
    Confirm,
    /// Call the order off, with the reason when the buyer gave one.
    Cancel { reason: Option<String> },
    /// Where the order is.
    Status,
    /// The buyer's orders.
    MyOrders,
    /// The buyer says they paid, or asks how to send the receipt.
    Receipt,
    /// What the bot can do (a greeting gets this too).
    Help,
    /// A numbered choice, answering a question the bot asked.
    Choice(u32),
    /// An order reference and nothing else: where that order is, or the
    /// answer to a question the bot asked.
    Reference,
    /// Nothing it can place with confidence.
    Unknown,
}

/// A message as understood: what it asks, and of which order when it
/// names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Understood {
    pub intent: Intent,
    pub reference: Option<OrderReference>,
}

/// The intents words can point at, in the order they win when a message
/// points at several (a cancel outranks everything: it is what a buyer
/// most needs heard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The buyer says they are not sure: nothing is done on a guess.
    Unsure,
    Cancel,
    Confirm,
    Receipt,
    /// A question for the shop the bot cannot answer (prices, sizes,
    /// where to pay): not mistaken for an order's status.
    Other,
    MyOrders,
    Status,
    Help,
}

/// Phrases, matched on whole words before single words are (the longest
/// that fits); a phrase's words are not read again.
const PHRASES: &[(&str, Kind)] = &[
    // Unsure.
    ("i no know", Kind::Unsure),
    ("i dont know", Kind::Unsure),
    ("not sure", Kind::Unsure),
    ("im not sure", Kind::Unsure),
    // Questions for the shop.
    ("where do i send", Kind::Other),
    ("where should i send", Kind::Other),
    ("where do i pay", Kind::Other),
    ("where i go pay", Kind::Other),
    ("account number", Kind::Other),
    ("account details", Kind::Other),
    ("how much", Kind::Other),
    ("do you have", Kind::Other),
    ("una get", Kind::Other),
    ("una dey deliver", Kind::Other),
    ("do you deliver", Kind::Other),
    ("you deliver to", Kind::Other),
    // Keeping the order.
    ("dont cancel", Kind::Confirm),
    ("do not cancel", Kind::Confirm),
    ("no cancel", Kind::Confirm),
    ("dont want to cancel", Kind::Confirm),
    ("do not want to cancel", Kind::Confirm),
    // Agreement.
    ("go ahead", Kind::Confirm),
    ("carry go", Kind::Confirm),
    ("no wahala", Kind::Confirm),
    ("no problem", Kind::Confirm),
    ("no worries", Kind::Confirm),
    ("sounds good", Kind::Confirm),
    ("all good", Kind::Confirm),
    ("i want it", Kind::Confirm),
    ("i want am", Kind::Confirm),
    ("i still want", Kind::Confirm),
    ("send it", Kind::Confirm),
    ("please process", Kind::Confirm),
    ("na so", Kind::Confirm),
    ("e dey okay", Kind::Confirm),
    ("lets go", Kind::Confirm),
    ("do it", Kind::Confirm),
    // Calling off.
    ("changed my mind", Kind::Cancel),
    ("change my mind", Kind::Cancel),
    ("dont want", Kind::Cancel),
    ("do not want", Kind::Cancel),
    ("dont need", Kind::Cancel),
    ("do not need", Kind::Cancel),
    ("no longer", Kind::Cancel),
    ("not interested", Kind::Cancel),
    ("no want", Kind::Cancel),
    ("no need am", Kind::Cancel),
    ("no go collect", Kind::Cancel),
    ("call it off", Kind::Cancel),
    ("call off", Kind::Cancel),
    ("forget it", Kind::Cancel),
    ("forget am", Kind::Cancel),
    ("leave am", Kind::Cancel),
    ("comot am", Kind::Cancel),
    ("remove am", Kind::Cancel),
    ("remove it", Kind::Cancel),
    ("i no want", Kind::Cancel),
    // Money sent.
    ("i have paid", Kind::Receipt),
    ("ive paid", Kind::Receipt),
    ("i paid", Kind::Receipt),
    ("i don pay", Kind::Receipt),
    ("don pay", Kind::Receipt),
    ("made payment", Kind::Receipt),
    ("made the payment", Kind::Receipt),
    ("payment done", Kind::Receipt),
    ("payment made", Kind::Receipt),
    ("payment sent", Kind::Receipt),
    ("sent the money", Kind::Receipt),
    ("sent money", Kind::Receipt),
    ("don send money", Kind::Receipt),
    ("don send the money", Kind::Receipt),
    ("transfer done", Kind::Receipt),
    ("i transferred", Kind::Receipt),
    ("i don transfer", Kind::Receipt),
    ("proof of payment", Kind::Receipt),
    ("made the transfer", Kind::Receipt),
    ("made transfer", Kind::Receipt),
    ("done the transfer", Kind::Receipt),
    ("did the transfer", Kind::Receipt),
    ("have transferred", Kind::Receipt),
    ("money don enter", Kind::Receipt),
    ("confirm the payment", Kind::Receipt),
    ("confirm payment", Kind::Receipt),
    ("confirm my payment", Kind::Receipt),
    ("evidence of payment", Kind::Receipt),
    // The buyer's orders.
    ("my orders", Kind::MyOrders),
    ("all my order", Kind::MyOrders),
    ("order history", Kind::MyOrders),
    ("what did i order", Kind::MyOrders),
    ("which orders", Kind::MyOrders),
    ("list orders", Kind::MyOrders),
    ("show orders", Kind::MyOrders),
    ("my order list", Kind::MyOrders),
    ("i don order", Kind::MyOrders),
    ("i don buy", Kind::MyOrders),
    // Where things are.
    ("where is", Kind::Status),
    ("where my", Kind::Status),
    ("wetin dey", Kind::Status),
    ("wetin happen", Kind::Status),
    ("how far", Kind::Status),
    ("any update", Kind::Status),
    ("when will", Kind::Status),
    ("when is", Kind::Status),
    ("has it", Kind::Status),
    ("e don", Kind::Status),
    ("don reach", Kind::Status),
    ("never reach", Kind::Status),
    ("not received", Kind::Status),
    ("never receive", Kind::Status),
    ("not receive", Kind::Status),
    ("didnt receive", Kind::Status),
    ("didnt get", Kind::Status),
    ("never get", Kind::Status),
    ("havent received", Kind::Status),
    ("have not received", Kind::Status),
    ("still waiting", Kind::Status),
    ("my package", Kind::Status),
    ("my parcel", Kind::Status),
    ("my market", Kind::Status),
    ("my goods", Kind::Status),
    ("what is happening", Kind::Status),
    ("on the way", Kind::Status),
    ("whats happening", Kind::Status),
    // Asking for help.
    ("what can i", Kind::Help),
    ("wetin i fit", Kind::Help),
    ("what can you", Kind::Help),
    ("how does this work", Kind::Help),
    ("how do i", Kind::Help),
    ("need help", Kind::Help),
    ("talk to", Kind::Help),
    ("speak to", Kind::Help),
    ("customer care", Kind::Help),
    ("customer service", Kind::Help),
    ("good morning", Kind::Help),
    ("good afternoon", Kind::Help),
    ("good evening", Kind::Help),
];

/// Words that point at an intent on their own.
const STRONG: &[(&str, Kind)] = &[
    ("confirm", Kind::Confirm),
    ("confirmed", Kind::Confirm),
    ("confirming", Kind::Confirm),
    ("accept", Kind::Confirm),
    ("accepted", Kind::Confirm),
    ("approve", Kind::Confirm),
    ("approved", Kind::Confirm),
    ("proceed", Kind::Confirm),
    ("agree", Kind::Confirm),
    ("gree", Kind::Confirm),
    ("cancel", Kind::Cancel),
    ("cancelled", Kind::Cancel),
    ("canceled", Kind::Cancel),
    ("cancellation", Kind::Cancel),
    ("reject", Kind::Cancel),
    ("decline", Kind::Cancel),
    ("abort", Kind::Cancel),
    ("upload", Kind::Receipt),
    ("receipt", Kind::Receipt),
    ("proof", Kind::Receipt),
    ("paid", Kind::Receipt),
    ("transferred", Kind::Receipt),
    ("screenshot", Kind::Receipt),
    ("orders", Kind::MyOrders),
    ("history", Kind::MyOrders),
    ("status", Kind::Status),
    ("where", Kind::Status),
    ("track", Kind::Status),
    ("tracking", Kind::Status),
    ("delivery", Kind::Status),
    ("deliver", Kind::Status),
    ("shipped", Kind::Status),
    ("arrive", Kind::Status),
    ("arriving", Kind::Status),
    ("eta", Kind::Status),
    ("update", Kind::Status),
    ("progress", Kind::Status),
    ("reach", Kind::Status),
    ("rider", Kind::Status),
    ("dispatch", Kind::Status),
    ("help", Kind::Help),
    ("menu", Kind::Help),
    ("commands", Kind::Help),
    ("options", Kind::Help),
    ("support", Kind::Help),
];

/// Words that lean towards an intent: they decide only when no strong
/// word does ("yes", "no", a greeting).
const WEAK: &[(&str, Kind)] = &[
    ("yes", Kind::Confirm),
    ("yeah", Kind::Confirm),
    ("yea", Kind::Confirm),
    ("yep", Kind::Confirm),
    ("yup", Kind::Confirm),
    ("ya", Kind::Confirm),
    ("y", Kind::Confirm),
    ("ok", Kind::Confirm),
    ("okay", Kind::Confirm),
    ("okk", Kind::Confirm),
    ("k", Kind::Confirm),
    ("sure", Kind::Confirm),
    ("fine", Kind::Confirm),
    ("alright", Kind::Confirm),
    ("correct", Kind::Confirm),
    ("perfect", Kind::Confirm),
    ("great", Kind::Confirm),
    ("good", Kind::Confirm),
    ("oya", Kind::Confirm),
    ("👍", Kind::Confirm),
    ("no", Kind::Cancel),
    ("nope", Kind::Cancel),
    ("nah", Kind::Cancel),
    ("n", Kind::Cancel),
    ("stop", Kind::Cancel),
    ("hi", Kind::Help),
    ("hello", Kind::Help),
    ("hey", Kind::Help),
    ("hiya", Kind::Help),
    ("start", Kind::Help),
    ("info", Kind::Help),
];

/// Strong words whose misspellings are still read as them: long and
/// unlike everyday words (so "there" is never "where", nor "order"
/// "orders").
const FORGIVEN: &[&str] = &[
    "confirm",
    "confirmed",
    "cancel",
    "cancelled",
    "canceled",
    "cancellation",
    "receipt",
    "upload",
    "status",
    "tracking",
    "delivery",
    "approve",
    "proceed",
    "reject",
    "decline",
    "screenshot",
    "transferred",
    "support",
];

/// How people shorten words in chats, and the words they mean.
const SHORTHAND: &[(&str, &str)] = &[
    ("d", "the"),
    ("da", "the"),
    ("pls", "please"),
    ("plz", "please"),
    ("u", "you"),
    ("ur", "your"),
    ("dat", "that"),
    ("dats", "thats"),
    ("wat", "what"),
    ("wht", "what"),
    ("wen", "when"),
    ("wer", "where"),
    ("wher", "where"),
    ("whr", "where"),
    ("ordr", "order"),
    ("abt", "about"),
    ("dnt", "dont"),
    ("nt", "not"),
];

/// Words that turn the next intent word down ("not paid yet").
const NEGATIONS: &[&str] = &["dont", "not", "never", "cannot", "cant", "no"];

/// Where a sentence ends: negations and phrases do not reach across.
const BREAK: &str = ",";

/// Words after which a cancel's reason starts.
const BECAUSE: &[&str] = &["because", "cos", "coz", "cause", "since", "reason"];

/// Ordinal words of a numbered choice.
const ORDINALS: &[&str] = &[
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
];

/// Reads a buyer's message.
pub fn understand(text: &str) -> Understood {
    let (reference, rest) = take_reference(text);
    let words = words(&rest);
    if reference.is_none() {
        if let Some(n) = choice(&words) {
            return Understood {
                intent: Intent::Choice(n),
                reference,
            };
        }
    }
    let kind = kind_of(&words);
    let intent = match kind {
        Some(Kind::Unsure | Kind::Other) => Intent::Unknown,
        Some(Kind::Cancel) => Intent::Cancel {
            reason: reason(&rest),
        },
        Some(Kind::Confirm) => Intent::Confirm,
        Some(Kind::Receipt) => Intent::Receipt,
        Some(Kind::MyOrders) if reference.is_some() => Intent::Status,
        Some(Kind::MyOrders) => Intent::MyOrders,
        Some(Kind::Status) => Intent::Status,
        Some(Kind::Help) => Intent::Help,
        None if reference.is_some() => Intent::Reference,
        None => Intent::Unknown,
    };
    Understood { intent, reference }
}

/// The first order reference in `text`, and the text without it: "ORD"
/// at the start of a word, then its eight symbols together or as two
/// groups of four (`ORD-7K3Q-X2MB`, `ord7k3qx2mb`, `ORD 7K3Q X2MB`), in
/// any case.
fn take_reference(text: &str) -> (Option<OrderReference>, String) {
    let chars: Vec<char> = text.chars().collect();
    let separator = |c: char| matches!(c, '-' | ' ' | '_' | ':' | '.');
    for start in 0..chars.len() {
        let at_word = start == 0 || !chars[start - 1].is_alphanumeric();
        let ord: String = chars[start..].iter().take(3).collect();
        if !at_word || !ord.eq_ignore_ascii_case("ord") {
            continue;
        }
        // The runs of letters and digits after "ORD", up to two.
        let mut groups: Vec<String> = Vec::new();
        let mut end = start + 3;
        while groups.len() < 2 {
            let mut at = end;
            while at < chars.len() && separator(chars[at]) && at - end < 2 {
                at += 1;
            }
            let run: String = chars[at..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if run.is_empty() {
                break;
            }
            end = at + run.len();
            groups.push(run);
            if groups[0].len() != 4 {
                break;
            }
        }
        let lengths: Vec<usize> = groups.iter().map(String::len).collect();
        if lengths != [8] && lengths != [4, 4] {
            continue;
        }
        if let Some(reference) = OrderReference::parse(&format!("ORD{}", groups.concat())) {
            let rest: String = chars[..start].iter().chain(&chars[end..]).collect();
            return (Some(reference), rest);
        }
    }
    (None, text.to_string())
}

/// The message's words: lower case, apostrophes dropped ("don't" is
/// "dont"), 👍 a word of its own, the ends of sentences a [`BREAK`], and
/// anything else that is not a letter or a digit a space.
fn words(text: &str) -> Vec<String> {
    let mut clean = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            '\'' | '’' | '‘' => {}
            '👍' => clean.push_str(" 👍 "),
            ',' | '.' | '!' | '?' | ';' | ':' | '\n' => {
                clean.push(' ');
                clean.push_str(BREAK);
                clean.push(' ');
            }
            c if c.is_alphanumeric() => clean.push(c),
            _ => clean.push(' '),
        }
    }
    clean
        .split_whitespace()
        .map(|w| {
            SHORTHAND
                .iter()
                .find(|(short, _)| *short == w)
                .map_or(w, |(_, long)| long)
                .to_string()
        })
        .collect()
}

/// A whole message that is a numbered choice: "2", "#2", "number 2",
/// "option two"… "the second one", "2nd".
fn choice(words: &[String]) -> Option<u32> {
    const FILLER: &[&str] = &[
        BREAK, "the", "one", "number", "no", "option", "order", "pick", "i", "choose", "please",
        "pls", "#",
    ];
    let mut found = None;
    for w in words {
        let n = w
            .parse::<u32>()
            .ok()
            .or_else(|| ordinal(w))
            .or_else(|| cardinal(w));
        match n {
            Some(n) if found.is_none() && (1..=20).contains(&n) => found = Some(n),
            Some(_) => return None,
            None if FILLER.contains(&w.as_str()) => {}
            None => return None,
        }
    }
    found
}

fn ordinal(word: &str) -> Option<u32> {
    if let Some(at) = ORDINALS.iter().position(|o| *o == word) {
        return u32::try_from(at + 1).ok();
    }
    let digits = word
        .strip_suffix("st")
        .or_else(|| word.strip_suffix("nd"))
        .or_else(|| word.strip_suffix("rd"))
        .or_else(|| word.strip_suffix("th"))?;
    digits.parse().ok()
}

fn cardinal(word: &str) -> Option<u32> {
    const NUMBERS: &[&str] = &[
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    // "one" alone is filler ("the second one"), so it counts only as a word.
    NUMBERS
        .iter()
        .position(|n| *n == word && word != "one")
        .and_then(|at| u32::try_from(at + 1).ok())
}

/// Which intent the words point at, if any: phrases first, then strong
/// words (typos forgiven), then weak ones; a word turned down by a
/// negation counts for nothing, and a message that points both ways
/// between confirm and cancel is not placed.
fn kind_of(words: &[String]) -> Option<Kind> {
    let mut strong: Vec<Kind> = Vec::new();
    let mut weak: Vec<Kind> = Vec::new();
    let mut i = 0;
    let mut negated = false;
    while i < words.len() {
        if let Some((len, kind)) = phrase_at(words, i) {
            push(kind, negated, &mut strong, &mut weak);
            negated = false;
            i += len;
            continue;
        }
        let w = words[i].as_str();
        if w == BREAK {
            negated = false;
        } else if let Some(kind) = lookup(STRONG, w, true) {
            push(kind, negated, &mut strong, &mut weak);
            negated = false;
        } else if NEGATIONS.contains(&w) && next_is_intent(words, i + 1) {
            negated = true;
        } else if let Some(kind) = lookup(WEAK, w, false) {
            weak.push(kind);
        }
        i += 1;
    }
    let pick = |kinds: &[Kind]| -> Option<Option<Kind>> {
        if kinds.is_empty() {
            return None;
        }
        let both = kinds.contains(&Kind::Confirm) && kinds.contains(&Kind::Cancel);
        Some((!both).then(|| kinds.iter().copied().min()).flatten())
    };
    match pick(&strong) {
        Some(decided) => decided,
        None => pick(&weak).flatten(),
    }
}

/// Counts an intent word: as it is, or turned down by a negation (a
/// confirm turned down leans to a cancel: "don't send it").
fn push(kind: Kind, negated: bool, strong: &mut Vec<Kind>, weak: &mut Vec<Kind>) {
    match (negated, kind) {
        (false, kind) => strong.push(kind),
        (true, Kind::Confirm) => weak.push(Kind::Cancel),
        (true, _) => {}
    }
}

/// Whether the word at `i` (or the one after, in the same sentence) names
/// an intent, so that a negation before it turns it down.
fn next_is_intent(words: &[String], i: usize) -> bool {
    (i..words.len().min(i + 2))
        .take_while(|j| words[*j] != BREAK)
        .any(|j| phrase_at(words, j).is_some() || lookup(STRONG, &words[j], true).is_some())
}

/// The longest phrase starting at word `i`: its length in words and its
/// intent.
fn phrase_at(words: &[String], i: usize) -> Option<(usize, Kind)> {
    PHRASES
        .iter()
        .filter_map(|(phrase, kind)| {
            let parts: Vec<&str> = phrase.split(' ').collect();
            let fits = words.len() >= i + parts.len()
                && parts.iter().zip(&words[i..]).all(|(p, w)| p == w);
            fits.then_some((parts.len(), *kind))
        })
        .max_by_key(|(len, _)| *len)
}

/// The intent of `word` in `table`, misspellings of the [`FORGIVEN`] words
/// forgiven when `fuzzy`.
fn lookup(table: &[(&str, Kind)], word: &str, fuzzy: bool) -> Option<Kind> {
    table
        .iter()
        .find(|(w, _)| *w == word)
        .or_else(|| {
            fuzzy
                .then(|| {
                    table
                        .iter()
                        .find(|(w, _)| FORGIVEN.contains(w) && typo(w, word))
                })
                .flatten()
        })
        .map(|(_, kind)| *kind)
}

/// Whether `typed` is `word` with a slip or two: letters left out, added,
/// changed or swapped (optimal string alignment distance).
fn typo(word: &str, typed: &str) -> bool {
    let a: Vec<char> = word.chars().collect();
    let b: Vec<char> = typed.chars().collect();
    let allowed = if a.len() >= 8 { 2 } else { 1 };
    if a.len().abs_diff(b.len()) > allowed || b.len() < 4 {
        return false;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()] <= allowed
}

/// What follows "because" (or "cos", "reason:"…) in a cancel, as written.
fn reason(text: &str) -> Option<String> {
    // ASCII only: the words looked for are, and byte offsets stay those of `text`.
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut best: Option<usize> = None;
    for word in BECAUSE {
        let mut from = 0;
        while let Some(at) = lower[from..].find(word) {
            let start = from + at;
            let end = start + word.len();
            let alone = (start == 0 || !bytes[start - 1].is_ascii_alphanumeric())
                && (end == bytes.len() || !bytes[end].is_ascii_alphanumeric());
            if alone {
                best = Some(best.map_or(end, |b: usize| b.min(end)));
                break;
            }
            from = end;
        }
    }
    let start = best?;
    let reason = text
        .get(start..)?
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '-' | ','))
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '.' | '!'))
        .trim_start_matches("say ");
    let reason: String = reason.chars().take(500).collect();
    (!reason.is_empty()).then_some(reason)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reference(text: &str) -> Option<String> {
        take_reference(text).0.map(|r| r.to_string())
    }

    #[test]
    fn references_are_found_anywhere_and_only_whole() {
        assert_eq!(
            reference("pls is #ord-7k3q-x2mb. ready?").as_deref(),
            Some("ORD-7K3Q-X2MB")
        );
        assert_eq!(
            reference("ord 7k3q x2mo").as_deref(),
            Some("ORD-7K3Q-X2M0"),
            "O is zero"
        );
        assert_eq!(reference("when will my order arrive"), None);
        assert_eq!(reference("ORD-7K3Q"), None, "four symbols are not enough");
        assert_eq!(reference("ORD-7K3Q-X2MBZ"), None, "nor are nine");
        assert_eq!(reference("word 7K3QX2MB"), None, "ORD starts a word");
        let (_, rest) = take_reference("confirm ORD-7K3Q-X2MB now");
        assert_eq!(rest, "confirm  now");
    }

    #[test]
    fn a_reason_is_what_follows_because() {
        assert_eq!(
            reason("Cancel it because: the price is wrong!"),
            Some("the price is wrong".into())
        );
        assert_eq!(reason("cancel, since I moved"), Some("I moved".into()));
        assert_eq!(reason("cancel it, cause"), None);
        assert_eq!(
            reason("cancel, because ÇA COÛTE TROP"),
            Some("ÇA COÛTE TROP".into())
        );
        assert_eq!(
            reason("İİ cancel because x"),
            Some("x".into()),
            "lengths that change"
        );
        assert_eq!(reason("cancelling as soon as possible"), None);
    }

    #[test]
    fn typos_are_forgiven_only_in_long_words() {
        assert!(typo("confirm", "confrim"));
        assert!(typo("cancellation", "cancelation"));
        assert!(!typo("cancel", "camel"));
        assert!(!typo("status", "sta"));
        assert_eq!(understand("there").intent, Intent::Unknown);
        assert_eq!(understand("order").intent, Intent::Unknown);
    }

    proptest! {
        /// Whatever arrives, reading it never fails, and a reference it
        /// finds is one the text holds.
        #[test]
        fn any_text_is_read(text in "\\PC{0,80}") {
            let u = understand(&text);
            if let Some(r) = u.reference {
                let symbols: String = r.as_str().chars().filter(|c| *c != '-').collect();
                let typed: String = text.to_uppercase().chars().filter(char::is_ascii_alphanumeric).collect();
                let typed = typed.replace('O', "0").replace(['I', 'L'], "1");
                prop_assert!(typed.contains(&symbols[3..]), "{} in {:?}", r, text);
            }
        }
    }
}
