"""Verification cases built from any corpus: faithful restatements and meaning-changing edits.

Each case is one sentence of a corpus document turned into a claim that cites the
sentence's character offsets in its document. Faithful kinds restate the sentence (the
sentence itself, the sentence without a parenthesis, an agentive passive made active) and
should be judged supported; meaning-changing kinds (a negation added or removed, two names
swapped, a year shifted, a name replaced by another of the same type, a direction word
flipped, a condition dropped) should not.

The edits read the spaCy parse of the sentence (tags, dependencies, named entities). An
edit that cannot be made cleanly on a sentence returns ``None`` and the sentence is used
for other kinds; every edit is conservative rather than exhaustive, so the cases stay
grammatical and mean what their kind says.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from extractors import split_sentences

__all__ = [
    "CHANGING",
    "FAITHFUL",
    "KINDS",
    "SentenceSource",
    "VerifyCase",
    "build_cases",
    "condition_dropped",
    "direction_flipped",
    "name_replaced",
    "names_swapped",
    "negation_added",
    "negation_removed",
    "parenthesis_dropped",
    "passive_to_active",
    "past_tense",
    "third_person",
    "verbatim",
    "year_changed",
]

# A parsed sentence (spaCy ``Doc``) and its tokens; spaCy ships no type stubs.
Parsed = Any
Token = Any


class VerifyCase(BaseModel):
    """One claim to verify: an edit of one corpus sentence, citing that sentence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: str
    faithful: bool
    source: str
    start: int
    end: int
    sentence: str
    claim: str

    def request(self) -> dict[str, object]:
        """The case as one line of ``threadline verify`` input."""
        citation = {"source": self.source, "start": self.start, "end": self.end}
        return {"id": self.id, "claims": [{"text": self.claim, "citations": [citation]}]}


class SentenceSource(BaseModel):
    """A document of the corpus as the case builder reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    text: str


# ---------------------------------------------------------------------- verb forms

_IRREGULAR_TABLE = """
arise arose arisen; awake awoke awoken; bear bore borne,born; beat beat beaten;
become became become; begin began begun; bend bent bent; bind bound bound; bite bit bitten;
bleed bled bled; blow blew blown; break broke broken; breed bred bred; bring brought brought;
broadcast broadcast broadcast; build built built; buy bought bought; cast cast cast;
catch caught caught; choose chose chosen; cling clung clung; come came come; cost cost cost;
creep crept crept; cut cut cut; deal dealt dealt; dig dug dug; do did done; draw drew drawn;
drink drank drunk; drive drove driven; eat ate eaten; fall fell fallen; feed fed fed;
feel felt felt; fight fought fought; find found found; flee fled fled; fly flew flown;
forbid forbade forbidden; forecast forecast forecast; foresee foresaw foreseen;
forget forgot forgotten; forgive forgave forgiven; forsake forsook forsaken;
freeze froze frozen; get got got,gotten; give gave given; go went gone; grind ground ground;
grow grew grown; hang hung hung; have had had; hear heard heard; hide hid hidden; hit hit hit;
hold held held; hurt hurt hurt; keep kept kept; know knew known; lay laid laid; lead led led;
leave left left; lend lent lent; let let let; light lit lit; lose lost lost; make made made;
mean meant meant; meet met met; mislead misled misled; mistake mistook mistaken;
overcome overcame overcome; oversee oversaw overseen; overtake overtook overtaken;
overthrow overthrew overthrown; pay paid paid; put put put; quit quit quit; read read read;
rebuild rebuilt rebuilt; redo redid redone; rewrite rewrote rewritten; ride rode ridden;
ring rang rung; rise rose risen; run ran run; say said said; see saw seen; seek sought sought;
sell sold sold; send sent sent; set set set; sew sewed sewn; shake shook shaken; shed shed shed;
shoot shot shot; show showed shown; shrink shrank shrunk; shut shut shut; sing sang sung;
sink sank sunk; sit sat sat; slay slew slain; sleep slept slept; slide slid slid;
sow sowed sown; speak spoke spoken; spend spent spent; spin spun spun; split split split;
spread spread spread; spring sprang sprung; stand stood stood; steal stole stolen;
stick stuck stuck; sting stung stung; strike struck struck,stricken; swear swore sworn;
sweep swept swept; swim swam swum; swing swung swung; take took taken; teach taught taught;
tear tore torn; tell told told; think thought thought; throw threw thrown;
undergo underwent undergone; understand understood understood; undertake undertook undertaken;
uphold upheld upheld; upset upset upset; wake woke woken; wear wore worn; weave wove woven;
win won won; wind wound wound; withdraw withdrew withdrawn; withhold withheld withheld;
write wrote written
"""


def _irregular() -> dict[str, tuple[str, frozenset[str]]]:
    table: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in _IRREGULAR_TABLE.split(";"):
        base, past, participles = entry.split()
        table[base] = (past, frozenset(participles.split(",")))
    return table


IRREGULAR = _irregular()
# Stress-final verbs of two syllables that double their last consonant.
_DOUBLING = frozenset(
    "admit commit compel control equip occur omit patrol permit prefer refer regret submit "
    "transfer expel propel rebel repel acquit abet".split()
)
_VOWELS = "aeiou"


def past_tense(lemma: str) -> str:
    """The simple past of a verb given its base form ("acquire" -> "acquired")."""
    lemma = lemma.lower()
    if lemma == "be":
        return "was"
    if lemma in IRREGULAR:
        return IRREGULAR[lemma][0]
    if lemma.endswith("e"):
        return lemma + "d"
    if len(lemma) > 2 and lemma.endswith("y") and lemma[-2] not in _VOWELS:
        return lemma[:-1] + "ied"
    if _doubles(lemma):
        return lemma + lemma[-1] + "ed"
    return lemma + "ed"


def _doubles(lemma: str) -> bool:
    if lemma in _DOUBLING:
        return True
    cvc = (
        len(lemma) >= 3
        and lemma[-1] not in _VOWELS + "wxy"
        and lemma[-2] in _VOWELS
        and lemma[-3] not in _VOWELS
    )
    syllables = len(re.findall(r"[aeiouy]+", lemma))
    return cvc and syllables == 1


def third_person(lemma: str) -> str:
    """The third person singular present of a verb ("own" -> "owns")."""
    lemma = lemma.lower()
    special = {"be": "is", "have": "has", "do": "does", "go": "goes"}
    if lemma in special:
        return special[lemma]
    if lemma.endswith(("s", "sh", "ch", "x", "z", "o")):
        return lemma + "es"
    if len(lemma) > 2 and lemma.endswith("y") and lemma[-2] not in _VOWELS:
        return lemma[:-1] + "ies"
    return lemma + "s"


def _past_from_participle(token: Token) -> str | None:
    """The simple past of a verb given as a past participle, or None when unsure."""
    word: str = token.text.lower()
    lemma: str = token.lemma_.lower()
    if not _participle_of(word, lemma):
        return None
    return IRREGULAR[lemma][0] if lemma in IRREGULAR else word


def _participle_of(word: str, lemma: str) -> bool:
    """Whether ``word`` is the past participle of ``lemma`` (so the lemma can be trusted)."""
    if lemma in IRREGULAR:
        return word in IRREGULAR[lemma][1]
    regular = {lemma + "ed", lemma + "d", lemma[:-1] + "ied", lemma + lemma[-1:] + "ed"}
    return word.isalpha() and word in regular


# ---------------------------------------------------------------------- rendering


def _render(
    doc: Parsed,
    replace: Mapping[int, str] | None = None,
    drop: Iterable[int] = (),
) -> str:
    """The sentence with tokens replaced or dropped, whitespace and capitals tidied."""
    replace = replace or {}
    dropped = set(drop)
    pieces: list[str] = []
    for token in doc:
        if token.i in dropped:
            # "was" + "n't " loses the "n't" but keeps the space after it.
            if pieces and not pieces[-1][-1:].isspace():
                pieces[-1] += token.whitespace_
            continue
        pieces.append(replace.get(token.i, token.text) + token.whitespace_)
    return _tidy("".join(pieces))


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:!?)\]])", r"\1", text)
    text = re.sub(r"([(\[])\s+", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r"[,;:]\s*([.!?])$", r"\1", text)
    text = re.sub(r"^[,;:]\s*", "", text)
    return text[:1].upper() + text[1:]


def _an(word: str, like: str) -> str:
    """The indefinite article for ``word``, in the capitalisation of ``like``."""
    article = "an" if word[:1].lower() in _VOWELS else "a"
    return article.capitalize() if like[:1].isupper() else article


def _with_article(doc: Parsed, replace: dict[int, str], at: int, word: str) -> None:
    """Fix "a"/"an" before token ``at`` for the new ``word`` that starts there."""
    if at > 0 and doc[at - 1].lower_ in {"a", "an"}:
        replace[at - 1] = _an(word, doc[at - 1].text)


# ---------------------------------------------------------------------- faithful kinds


def verbatim(doc: Parsed) -> str | None:
    """The sentence itself."""
    text: str = doc.text
    return text.strip()


_PAREN = re.compile(r"\s*\([^()]*\)")


def parenthesis_dropped(doc: Parsed) -> str | None:
    """The sentence without its parenthesised asides; None when it has none."""
    text = str(doc.text)
    if not _PAREN.search(text):
        return None
    out = _tidy(_PAREN.sub("", text))
    if "(" in out or ")" in out or len(out.split()) < 4:
        return None
    return out


_OBJECT_CASE = {"he": "him", "she": "her", "they": "them", "we": "us", "i": "me", "it": "it"}
_SUBJECT_CASE = {"him": "he", "her": "she", "them": "they", "us": "we", "me": "I", "it": "it"}


def passive_to_active(doc: Parsed) -> str | None:
    """An agentive passive made active: "X was acquired by Y" -> "Y acquired X"."""
    for verb in doc:
        out = _activate(doc, verb)
        if out is not None:
            return out
    return None


def _activate(doc: Parsed, verb: Token) -> str | None:
    parts = _passive_parts(verb)
    if parts is None:
        return None
    aux, subject, by, agent = parts
    subj_lo, subj_hi = subject.left_edge.i, subject.right_edge.i
    agent_lo, agent_hi = by.i, agent.right_edge.i
    if not subj_hi < aux.i < verb.i < agent_lo:
        return None
    if not _movable(doc[subj_lo : subj_hi + 1], doc[agent_lo : agent_hi + 1]):
        return None
    active = _active_verb(verb, aux, agent)
    subject_text = _moved(doc[subj_lo : subj_hi + 1], _OBJECT_CASE)
    agent_text = _moved(doc[by.i + 1 : agent_hi + 1], _SUBJECT_CASE)
    if active is None or subject_text is None or agent_text is None:
        return None
    before = _text(doc[:subj_lo])
    between = _text(t for t in doc[subj_hi + 1 : verb.i] if t.i != aux.i)
    after = _text(t for t in doc[verb.i + 1 :] if not agent_lo <= t.i <= agent_hi)
    return _tidy(" ".join([before, agent_text, between, active, subject_text, after]))


def _movable(subject: Any, agent: Any) -> bool:
    """Whether the subject and the agent ("by ...") are plain phrases that can trade places."""
    # A subject with its own clause or aside ("Globex, which ..., was") is left alone, and
    # so is a passive inside a quotation (the quote would change).
    if any(t.is_punct or t.dep_ in {"relcl", "acl", "appos"} for t in subject):
        return False
    doc = agent.doc
    if any(t.is_quote for t in doc[subject.start : agent.end]):
        return False
    if sum(t.is_quote for t in doc[: subject.start]) % 2:
        return False
    # "by another corporation, the Church of ...": an aside or a list would be cut in two.
    # "by Hebei Province and neighbors Tianjin", "by the airport 25 km southeast": an agent
    # running on into another noun or a number is not a whole phrase.
    after = doc[agent.end] if agent.end < len(doc) else None
    return not any(t.is_punct for t in agent) and (
        after is None
        or (
            after.lower_ not in {",", "and", "or", "(", ";"}
            and after.pos_ not in {"PROPN", "NOUN", "NUM"}
        )
    )


def _passive_parts(verb: Token) -> tuple[Token, Token, Token, Token] | None:
    """(auxiliary, subject, "by", agent) of a simple agentive passive, else None."""
    if verb.tag_ != "VBN" or not verb.lemma_.isalpha():
        return None
    kids = list(verb.children)
    auxes = [k for k in kids if k.dep_ in {"aux", "auxpass", "neg"}]
    subjects = [k for k in kids if k.dep_ == "nsubjpass"]
    agents = [k for k in kids if k.dep_ == "agent" and k.lower_ == "by"]
    objects = [k for a in agents for k in a.children]
    simple = (
        len(auxes) == len(subjects) == len(agents) == len(objects) == 1
        and auxes[0].dep_ == "auxpass"
        and auxes[0].lower_ in {"was", "were", "is", "are"}
        and objects[0].dep_ == "pobj"
        # "was designed by X and built in 1980": the second verb would lose its subject;
        # "was followed up by X": the particle would be stranded.
        and not any(k.dep_ in {"conj", "prt"} for k in kids)
    )
    if not simple:
        return None
    # "... that is published by X": a relative pronoun is not a phrase to move, and a
    # negation inside the subject ("not one was reported by") would change its scope.
    if any(t.tag_ in {"WDT", "WP", "WP$"} or t.lower_ in _NEGATIONS for t in subjects[0].subtree):
        return None
    return auxes[0], subjects[0], agents[0], objects[0]


def _active_verb(verb: Token, aux: Token, agent: Token) -> str | None:
    """The active form of a passive verb, in the auxiliary's tense and the agent's number."""
    if not _participle_of(verb.lower_, verb.lemma_.lower()):
        return None
    if aux.lower_ in {"was", "were"}:
        return _past_from_participle(verb)
    if agent.tag_ in {"NNS", "NNPS"} or any(k.dep_ == "conj" for k in agent.children):
        return str(verb.lemma_).lower()
    if agent.tag_ in {"NN", "NNP"}:
        return third_person(verb.lemma_)
    return None


def _moved(span: Any, cases: Mapping[str, str]) -> str | None:
    """A noun phrase's text for a new position: pronouns change case, "The" drops its
    capital."""
    if len(span) == 1 and span[0].tag_ == "PRP":
        return cases.get(span[0].lower_)
    first = span[0]
    words = [t.text_with_ws for t in span]
    if first.pos_ != "PROPN" and first.text != "I" and first.ent_iob_ != "B":
        words[0] = first.lower_ + first.whitespace_
    return "".join(words).strip()


def _text(tokens: Iterable[Token]) -> str:
    return "".join(t.text_with_ws for t in tokens).strip()


# ---------------------------------------------------------------------- polarity

_NEGATIONS = frozenset(
    "not n't never no nor neither none nobody nothing nowhere cannot without hardly".split()
)
_CONTRACTED = {"ca": "can", "wo": "will", "sha": "shall"}


def _negation_count(doc: Parsed) -> int:
    return sum(t.lower_ in _NEGATIONS for t in doc)


def negation_added(doc: Parsed) -> str | None:
    """The main verb negated: "acquired" -> "did not acquire", "was" -> "was not"."""
    if _negation_count(doc):
        return None
    root = doc[:].root
    if root.pos_ not in {"VERB", "AUX"} or any(
        k.dep_ == "conj" and k.pos_ in {"VERB", "AUX"} for k in root.children
    ):
        return None
    auxes = sorted(
        (k for k in root.children if k.dep_ in {"aux", "auxpass"} and k.i < root.i),
        key=lambda k: k.i,
    )
    replace: dict[int, str] = {}
    if auxes:
        first = auxes[0]
        if first.lower_ in {"to", "ca", "wo"} or first.tag_ not in {"MD", "VBD", "VBZ", "VBP"}:
            return None
        replace[first.i] = "cannot" if first.lower_ == "can" else f"{first.text} not"
    elif root.lemma_ == "be":
        if root.tag_ not in {"VBD", "VBZ", "VBP"}:
            return None
        replace[root.i] = f"{root.text} not"
    elif root.tag_ in {"VBD", "VBZ", "VBP"} and root.lemma_.isalpha():
        do = {"VBD": "did", "VBZ": "does", "VBP": "do"}[root.tag_]
        replace[root.i] = f"{do} not {root.lemma_.lower()}"
    else:
        return None
    return _render(doc, replace)


def negation_removed(doc: Parsed) -> str | None:
    """The one negation of the sentence removed: "did not acquire" -> "acquired"."""
    if _negation_count(doc) != 1:
        return None
    neg = next((t for t in doc if t.dep_ == "neg"), None)
    if neg is None:
        return None
    nxt = doc[neg.i + 1].lower_ if neg.i + 1 < len(doc) else ""
    if neg.lower_ == "no" and nxt == "longer":
        return _render(doc, drop=[neg.i, neg.i + 1])
    if neg.head.pos_ not in {"VERB", "AUX"}:
        return None
    if neg.lower_ == "never":
        return _render(doc, drop=[neg.i])
    # "not only", "not just", "not even" do not deny the clause.
    denies = neg.lower_ in {"not", "n't"} and neg.i > 0 and nxt not in {"only", "just", "even"}
    return _not_removed(doc, neg) if denies else None


def _not_removed(doc: Parsed, neg: Token) -> str | None:
    head, before = neg.head, doc[neg.i - 1]
    if before.lemma_ == "do" and before.dep_ == "aux" and head.i > neg.i:
        # "did not acquire" -> "acquired": the verb takes the tense "do" carried.
        forms = {"VBD": past_tense, "VBZ": third_person, "VBP": str.lower}
        if before.tag_ not in forms or not head.lemma_.isalpha():
            return None
        verb = forms[before.tag_](head.lemma_)
        return _render(doc, {head.i: verb}, drop=[before.i, neg.i])
    replace = {before.i: _CONTRACTED[before.lower_]} if before.lower_ in _CONTRACTED else {}
    return _render(doc, replace, drop=[neg.i])


# ---------------------------------------------------------------------- names and years

NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "WORK_OF_ART", "EVENT", "NORP"})
#: Labels a replacement name is drawn for: demonyms and titles of works are too often
#: mislabelled to stand in for one another.
REPLACEABLE = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC"})
_SYMMETRIC = frozenset(
    "marry wed divorce meet partner collaborate merge tie draw face play compete border "
    "neighbor neighbour".split()
)
# Text between two names that makes one an alias or an aside of the other.
_ALIAS = re.compile(r"[()\[\];:]|known as|formerly|former name|nicknamed|\baka\b", re.I)
_COORDINATION = re.compile(r"^\s*(,|and|or|&|/|-|\u2013|,\s*and|,\s*or|vs\.?|versus)\s*$", re.I)


def _names(doc: Parsed) -> list[Any]:
    """Named entities that are whole names (not a piece of a longer proper noun phrase)."""
    return [
        e
        for e in doc.ents
        if e.label_ in NAME_LABELS
        and _name_like(e.text)
        and (e.start == 0 or _free(doc[e.start - 1]))
        and (e.end == len(doc) or _free(doc[e.end]))
    ]


def _free(neighbour: Token) -> bool:
    """Whether a name's neighbour leaves it whole: not more of a proper name or a number
    ("Route 97"), not a quote (a title in quotes) and not a hyphen ("Australian-owned")."""
    return neighbour.pos_ not in {"PROPN", "NUM"} and neighbour.text not in {
        '"',
        "'",
        "``",
        "''",
        "-",
    }


def _conjunct_head(token: Token) -> Token:
    """The first member of the coordination ``token`` is in ("A, B and C" -> A)."""
    while token.dep_ == "conj" and token.head.i != token.i:
        token = token.head
    return token


def _listed(between: Any) -> bool:
    """Whether two names are items of one list: only a comma or a conjunction and no verb
    between them ("pike, Walleye, Smallmouth bass and Largemouth bass")."""
    joined = any(t.lower_ in {",", "and", "or", "nor", "&"} for t in between)
    return joined and not any(t.pos_ in {"VERB", "AUX"} for t in between)


def _name_like(text: str) -> bool:
    return (
        bool(text)
        and text[0].isupper()
        and not any(c.isdigit() for c in text)
        and "'" not in text
        and len(text.split()) <= 5
    )


def _words(text: str) -> set[str]:
    """Lower-cased words without a plural "s" ("Olympics" and "Olympic" share a word)."""
    words = (w.lower() for w in re.findall(r"\w+", text))
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}


def names_swapped(doc: Parsed) -> str | None:
    """Two names of the same type swapped ("A defeated B" -> "B defeated A")."""
    if {t.lemma_.lower() for t in doc} & _SYMMETRIC or {"between", "with"} & _words(doc.text):
        return None
    names = _names(doc)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if a.label_ != b.label_ or _words(a.text) & _words(b.text):
                continue
            between = doc.text[a.end_char - doc[0].idx : b.start_char]
            if _COORDINATION.match(between) or _ALIAS.search(between):
                continue
            gap = doc[a.end : b.start]
            if _conjunct_head(a.root) == _conjunct_head(b.root) or _listed(gap):
                continue
            # A name used as a modifier ("the U.S. state of", "the KLM hub") cannot take the
            # place of a name that heads its phrase.
            if "compound" in {a.root.dep_, b.root.dep_}:
                continue
            # Names two words apart without a verb are one phrase ("the U.S. state of New
            # Mexico", "Rossini's William Tell Overture"): swapped, they make no sentence.
            if len(gap) <= 2 and not any(t.pos_ in {"VERB", "AUX"} for t in gap):
                continue
            replace = {a.start: b.text, b.start: a.text}
            _with_article(doc, replace, a.start, b.text)
            _with_article(doc, replace, b.start, a.text)
            drop = [t.i for t in (*a[1:], *b[1:])]
            return _render(doc, replace, drop)
    return None


_YEAR = re.compile(r"^(1[0-9]{3}|20[0-9]{2})$")
_SHIFTS = (-10, -5, -3, -2, -1, 1, 2, 3, 5, 10)


def year_changed(doc: Parsed, rng: random.Random) -> str | None:
    """A year of the sentence shifted by a non-zero number of years (drawn from ``rng``)."""
    for token in doc:
        if not _YEAR.match(token.text) or token.ent_type_ not in {"DATE", ""}:
            continue
        shifts = list(_SHIFTS)
        rng.shuffle(shifts)
        for shift in shifts:
            year = str(int(token.text) + shift)
            if year not in doc.text:
                return _render(doc, {token.i: year})
    return None


def name_replaced(
    doc: Parsed,
    pool: Mapping[str, Sequence[str]],
    document_text: str,
    rng: random.Random,
) -> str | None:
    """A name replaced by another name of the same type that the document never mentions.

    ``pool`` holds names by NER label found elsewhere in the corpus; ``rng`` picks one.
    A person is replaced by a name of two words or more (one word is often a mislabel).
    """
    lowered = document_text.lower()
    for ent in _names(doc):
        if ent.label_ not in REPLACEABLE:
            continue
        candidates = [
            n
            for n in pool.get(ent.label_, ())
            if n.lower() not in lowered
            and not _words(n) & _words(ent.text)
            and not n.lower().startswith("the ")
            and (ent.label_ != "PERSON" or len(n.split()) >= 2)
        ]
        if not candidates:
            continue
        other = rng.choice(sorted(set(candidates)))
        replace = {ent.start: other}
        _with_article(doc, replace, ent.start, other)
        return _render(doc, replace, drop=[t.i for t in ent[1:]])
    return None


# ---------------------------------------------------------------------- directions

# word -> (antonym, the tag prefix the word must carry)
_DIRECTION_PAIRS = [
    ("rose", "fell", "VB"),
    ("risen", "fallen", "VB"),
    ("rises", "falls", "VB"),
    ("rising", "falling", "VB"),
    ("increased", "decreased", ""),
    ("increase", "decrease", ""),
    ("increases", "decreases", ""),
    ("increasing", "decreasing", ""),
    ("before", "after", "IN"),
    ("higher", "lower", "J"),
    ("highest", "lowest", "J"),
    ("larger", "smaller", "J"),
    ("largest", "smallest", "J"),
    ("older", "younger", "J"),
    ("oldest", "youngest", "J"),
    ("longer", "shorter", "J"),
    ("longest", "shortest", "J"),
    ("earlier", "later", ""),
    ("earliest", "latest", "J"),
    ("first", "last", ""),
    ("maximum", "minimum", ""),
    ("upper", "lower", "J"),
    ("predecessor", "successor", "NN"),
    ("preceded", "followed", "VB"),
    ("strengthened", "weakened", "VB"),
    ("improved", "worsened", "VB"),
    ("doubled", "halved", "VB"),
    ("majority", "minority", "NN"),
    ("faster", "slower", ""),
    ("fastest", "slowest", "J"),
    ("richer", "poorer", "J"),
    ("wider", "narrower", "J"),
    ("heavier", "lighter", "J"),
]
_ONE_WAY = [
    ("gained", "lost", "VB"),
    ("won", "lost", "VB"),
    ("wins", "loses", "VB"),
    ("grew", "shrank", "VB"),
    ("bigger", "smaller", "J"),
    ("biggest", "smallest", "J"),
    ("eldest", "youngest", "J"),
    ("elder", "younger", "J"),
    ("fewer", "more", "J"),
    ("less", "more", ""),
]


def _direction_table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for a, b, tag in _DIRECTION_PAIRS:
        table[a] = (b, tag)
        table[b] = (a, tag)
    for a, b, tag in _ONE_WAY:
        table[a] = (b, tag)
    return table


DIRECTIONS = _direction_table()
_NAMED = NAME_LABELS | {"LAW", "PRODUCT"}
# "named after", "looked after": "after" that is not about time.
_NOT_TEMPORAL = frozenset({"name", "look", "take", "seek", "model", "chase", "ask"})


def direction_flipped(doc: Parsed) -> str | None:
    """One direction word flipped: rose/fell, before/after, more/fewer, older/younger..."""
    for token in doc:
        if token.tag_ in {"NNP", "NNPS"} or token.ent_type_ in _NAMED:
            continue
        word = token.lower_
        flipped = _flip_more(doc, token) if word == "more" else _flip(token)
        if flipped is None:
            continue
        if token.text[:1].isupper():
            flipped = flipped.capitalize()
        replace = {token.i: flipped}
        _with_article(doc, replace, token.i, flipped)
        return _render(doc, replace)
    return None


def _flip(token: Token) -> str | None:
    word = token.lower_
    if word not in DIRECTIONS:
        return None
    antonym, tag = DIRECTIONS[word]
    if not token.tag_.startswith(tag):
        return None
    if word in {"before", "after"} and token.head.lemma_ in _NOT_TEMPORAL:
        return None
    nxt = token.nbor(1) if token.i + 1 < len(token.doc) else None
    if word in {"grew", "rose"} and nxt is not None and nxt.lower_ == "up":
        return None
    if word in {"first", "last"} and token.ent_type_ not in {"ORDINAL", "DATE", ""}:
        return None
    return antonym


def _flip_more(doc: Parsed, token: Token) -> str | None:
    if token.i + 1 >= len(doc) or token.dep_ not in {"amod", "advmod"}:
        return None
    nxt = doc[token.i + 1]
    if nxt.lower_ == "than" or nxt.tag_.startswith(("JJ", "RB")):
        return "less"
    if nxt.tag_ == "NNS":
        return "fewer"
    return None


# ---------------------------------------------------------------------- conditions

_CONDITIONS = frozenset({"if", "unless"})
# Words after which "if" asks a question ("not known if", "asked if") instead of setting a
# condition.
_ASKING = frozenset(
    "know known unknown ask wonder see check determine decide doubt unclear clear sure unsure "
    "certain uncertain question investigate test tell say show examine verify matter".split()
)


def condition_dropped(doc: Parsed) -> str | None:
    """An "if", "unless" or "provided that" clause removed, the main clause kept."""
    for token in doc:
        lo_hi = _condition_span(doc, token)
        if lo_hi is None:
            continue
        lo, hi = lo_hi
        root = doc[:].root
        if lo <= root.i <= hi:
            return None
        if lo > 0 and doc[lo - 1].lower_ == "only":
            lo -= 1
        drop = set(range(lo, hi + 1)) | _commas_around(doc, lo, hi)
        kept = [t for t in doc if t.i not in drop and not t.is_punct]
        if len(kept) < 3 or not any(t.dep_.startswith("nsubj") for t in kept):
            return None
        out = _render(doc, drop=drop)
        return out if _balanced(out) else None
    return None


def _balanced(text: str) -> bool:
    """Whether a cut left brackets, quotes and dashes whole (a clause inside a parenthesis,
    a title in quotes or a dashed aside cannot be cut cleanly)."""
    return (
        text.count("(") == text.count(")")
        and "()" not in text
        and text.count('"') % 2 == 0
        and not re.search(r"(--|\u2013|\u2014)\W*$", text)
    )


def _commas_around(doc: Parsed, lo: int, hi: int) -> set[int]:
    """The commas (and a "then") that go with a clause dropped from ``lo`` to ``hi``."""
    before = lo > 0 and doc[lo - 1].text == ","
    after = hi + 1 < len(doc) and doc[hi + 1].text == ","
    drop: set[int] = set()
    if after:
        drop.add(hi + 1)
        if hi + 2 < len(doc) and doc[hi + 2].lower_ == "then":
            drop.add(hi + 2)
    # "which, if melted, would" loses both commas; "However, if X, it" keeps the first.
    if before and (not after or lo - 1 > 1):
        drop.add(lo - 1)
    return drop


def _condition_span(doc: Parsed, token: Token) -> tuple[int, int] | None:
    clause = token.head
    if (
        token.lower_ in _CONDITIONS
        # "the film series If You Are the One": a capital inside the sentence starts a title.
        and (token.i == 0 or token.text.islower())
        and token.dep_ == "mark"
        and clause.dep_ == "advcl"
        and clause.pos_ in {"VERB", "AUX"}
    ):
        previous = doc[token.i - 1] if token.i > 0 else None
        # "as if" and "even if" do not make the main clause depend on anything.
        if previous is not None and (
            previous.lower_ in {"as", "even"} or previous.lemma_.lower() in _ASKING
        ):
            return None
        return min(clause.left_edge.i, token.i), clause.right_edge.i
    if token.lower_ in {"provided", "providing"} and token.dep_ != "ROOT":
        nxt = doc[token.i + 1] if token.i + 1 < len(doc) else None
        if nxt is None or nxt.lower_ != "that":
            return None
        if any(k.dep_.startswith("nsubj") for k in token.children):
            return None
        return token.left_edge.i, token.right_edge.i
    return None


# ---------------------------------------------------------------------- building cases

Edit = Callable[[Parsed], "str | None"]

FAITHFUL: dict[str, Edit] = {
    "verbatim": verbatim,
    "parenthesis_dropped": parenthesis_dropped,
    "passive_to_active": passive_to_active,
}
CHANGING: dict[str, Edit] = {
    "negation_added": negation_added,
    "negation_removed": negation_removed,
    "names_swapped": names_swapped,
    "year_changed": lambda doc: year_changed(doc, random.Random(0)),  # noqa: S311 - not a secret
    "direction_flipped": direction_flipped,
    "condition_dropped": condition_dropped,
}
EDITS = FAITHFUL | CHANGING
#: Every kind, faithful first; ``name_replaced`` also needs names from the whole corpus.
KINDS = [*FAITHFUL, *CHANGING, "name_replaced"]

_MIN_WORDS, _MAX_WORDS = 6, 60


# A quotation mark that opens or closes dialogue ("... hope,' said Scrooge, 'and ...").
_DIALOGUE = re.compile(r"[,.!?;:]['\u2019\u201d](\s|$)|(^|\s)['\u2018\u201c][A-Za-z]")


def _usable(text: str) -> bool:
    """Whether a sentence can be a claim: a statement of moderate length, in the text's own
    voice (no question, no dialogue), with its brackets and quotes closed."""
    words = len(text.split())
    return (
        _MIN_WORDS <= words <= _MAX_WORDS
        and text[:1].isupper()
        and text.endswith(".")
        and not _DIALOGUE.search(text)
        and text.count("(") == text.count(")")
        and text.count('"') % 2 == 0
    )


def _sentences(doc: SentenceSource) -> Iterator[tuple[int, int]]:
    for start, end in split_sentences(doc.text):
        if _usable(doc.text[start:end]):
            yield start, end


def build_cases(
    documents: Sequence[SentenceSource],
    parse: Callable[[str], Parsed],
    *,
    per_kind: int,
    seed: int = 0,
) -> list[VerifyCase]:
    """At most ``per_kind`` cases of every kind, spread over the documents.

    Documents are read in an order drawn from ``seed``, and their sentences too; a document
    gives each kind at most ``ceil(per_kind / documents)`` cases (one, on a corpus of many
    passages; all of them, on a single book). Sentences are split as Threadline splits them
    and parsed one at a time, their whitespace collapsed (the citation keeps the exact
    offsets).
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    order = list(documents)
    rng.shuffle(order)
    cap = max(1, -(-per_kind // max(len(order), 1)))
    cases: dict[str, list[VerifyCase]] = {kind: [] for kind in KINDS}
    parsed: list[tuple[SentenceSource, int, int, Parsed]] = []

    def full() -> bool:
        return all(len(cases[k]) >= per_kind for k in EDITS) and len(parsed) >= 4 * per_kind

    for doc in order:
        spans = list(_sentences(doc))
        rng.shuffle(spans)
        taken: Counter[str] = Counter()
        for start, end in spans:
            if full():
                break
            # A hard-wrapped text (a book) breaks sentences across lines; a claim quoting
            # one is written on one line.
            sentence = parse(" ".join(doc.text[start:end].split()))
            parsed.append((doc, start, end, sentence))
            for kind in EDITS:
                if taken[kind] >= cap or len(cases[kind]) >= per_kind:
                    continue
                claim = _edited(kind, sentence, rng)
                if claim is not None:
                    cases[kind].append(_case(kind, len(cases[kind]), doc, start, end, claim))
                    taken[kind] += 1
    cases["name_replaced"] = _names_replaced(parsed, per_kind, cap, rng)
    return [case for kind in KINDS for case in cases[kind]]


def _edited(kind: str, sentence: Parsed, rng: random.Random) -> str | None:
    claim = year_changed(sentence, rng) if kind == "year_changed" else EDITS[kind](sentence)
    if claim is None or (kind != "verbatim" and claim == sentence.text):
        return None
    return claim


def _names_replaced(
    parsed: Sequence[tuple[SentenceSource, int, int, Parsed]],
    per_kind: int,
    cap: int,
    rng: random.Random,
) -> list[VerifyCase]:
    """``name_replaced`` cases, drawing names from every sentence parsed.

    A name joins the pool when the parser gave it the same label at least twice, which
    keeps out most one-off mislabels.
    """
    seen = Counter((ent.label_, ent.text) for *_, sentence in parsed for ent in _names(sentence))
    pool: dict[str, list[str]] = defaultdict(list)
    for (label, text), count in sorted(seen.items()):
        if count >= 2:
            pool[label].append(text)
    cases: list[VerifyCase] = []
    taken: Counter[str] = Counter()
    for doc, start, end, sentence in parsed:
        if len(cases) >= per_kind:
            break
        if taken[doc.source] >= cap:
            continue
        claim = name_replaced(sentence, pool, doc.text, rng)
        if claim is not None:
            taken[doc.source] += 1
            cases.append(_case("name_replaced", len(cases), doc, start, end, claim))
    return cases


def _case(
    kind: str, number: int, doc: SentenceSource, start: int, end: int, claim: str
) -> VerifyCase:
    return VerifyCase(
        id=f"{kind}-{number + 1:03d}",
        kind=kind,
        faithful=kind in FAITHFUL,
        source=doc.source,
        start=start,
        end=end,
        sentence=doc.text[start:end],
        claim=claim,
    )
