"""How a parsed text names things: whole-word names, shortened names ("George Rankin"
for "George James Rankin"), names given by a document's title, and chains of claims
that share a name or a document."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.clauses import identity_path, path_between
from agents.values import country_key
from graph import normalize_name

__all__ = [
    "anchors_of",
    "attribute_of",
    "chained",
    "coreferent",
    "detached",
    "find",
    "finds",
    "inside",
    "lacking",
    "lemmas",
    "life_events",
    "located_at",
    "name_root",
    "names",
    "people",
    "proper_words",
    "relation_words",
    "runs_in",
    "said",
    "same_stem",
    "shortened",
    "spans_of",
    "titled",
    "words",
]


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in normalize_name(text)).split()


def names(doc: Any, name: str) -> bool:
    """Whether a parsed claim names ``name`` as whole words (or as the same country)."""
    wanted = words(name)
    if not wanted:
        return False
    if runs_in(wanted, words(doc.text)):
        return True
    if len(wanted) > 1 and _fuller(doc, wanted):
        return True
    country = country_key(name)
    return country is not None and any(country_key(t.text) == country for t in doc)


def inside(name: str, text: str) -> bool:
    return bool(set(words(text)) & set(words(name)))


def find(doc: Any, name: str) -> Any | None:
    """The first span of a parsed text that says ``name`` (whole words)."""
    spans = spans_of(doc, name)
    return spans[0] if spans else None


def finds(doc: Any, name: str) -> list[Any]:
    """The head token of each span of a parsed text that says ``name``."""
    return [span.root for span in spans_of(doc, name)]


def spans_of(doc: Any, name: str) -> list[Any]:
    """The spans of a parsed text that say ``name`` (whole words; a shortened name
    stands for the fuller one the text gives)."""
    wanted = words(name)
    if not wanted:
        return []
    said = [(w, t.i) for t in doc for w in words(t.text)]
    found = []
    for i in range(len(said) - len(wanted) + 1):
        if [w for w, _ in said[i : i + len(wanted)]] == wanted:
            found.append(doc[said[i][1] : said[i + len(wanted) - 1][1] + 1])
    if not found and len(wanted) > 1:
        found = _fuller(doc, wanted)
    return found


def _fuller(doc: Any, wanted: list[str]) -> list[Any]:
    """The names of a parsed text that ``wanted`` shortens: a person's fuller name, or
    any name written with whole words where ``wanted`` has initials (the parser does
    not always type a name with initials as a person)."""
    found = [
        e
        for e in doc.ents
        if (said := words(e.text))
        and shortened(wanted, said)
        and (e.label_ == "PERSON" or len(said) == len(wanted))
    ]
    if found:
        return found
    # a run of proper nouns the parser cut short or typed otherwise ("Eleanor McCutcheon
    # Davis" read as "McCutcheon Davis", "Herlyn Iván Espinal Martínez" as an
    # organisation): at most two words longer, as for a person's name
    return [run for run in _proper_runs(doc) if shortened(wanted, words(run.text))]


def _proper_runs(doc: Any) -> list[Any]:
    runs, start = [], None
    for token in [*doc, None]:
        if token is not None and token.pos_ == "PROPN":
            start = token.i if start is None else start
            continue
        if start is not None:
            runs.append(doc[start : token.i if token is not None else len(doc)])
        start = None
    return runs


def people(doc: Any) -> list[Any]:
    """The people a parsed text names (a shortened name stands only for a person's
    fuller name, never for a run of names such as "George Mason University Professor
    Ian Rankin")."""
    return [e for e in doc.ents if e.label_ == "PERSON"]


def shortened(wanted: list[str], name: list[str]) -> bool:
    """Whether ``wanted`` is ``name`` without one or two of its words, or with some of
    them written as initials ("George Rankin" of "George James Rankin", "Herlyn Espinal"
    of "Herlyn Iván Espinal Martínez", "Fairfax M. Cone" of "Fairfax Mastick Cone"): the
    same first word, the others in order, the last one written out."""
    if not len(wanted) <= len(name) <= len(wanted) + 2 or wanted == name:
        return False
    if len(wanted[-1]) == 1 or not _initial_of(wanted[0], name[0]):
        return False
    rest = iter(name[1:])
    return all(any(_initial_of(w, n) for n in rest) for w in wanted[1:])


def _initial_of(word: str, full: str) -> bool:
    """Whether ``word`` is ``full`` or its initial."""
    return word == full or (len(word) == 1 and len(full) > 1 and full.startswith(word))


def name_root(token: Any) -> Any:
    """The last word of the name a token is part of ("Ai" → "Ogawa" in "Ai Ogawa")."""
    while token.dep_ in ("compound", "flat") and token.head.pos_ == "PROPN":
        token = token.head
    return token


def titled(name: str, doc: Any, titles: tuple[str, ...]) -> bool:
    """Whether a claim speaks of ``name`` in a document titled with or about that name: by
    its surname alone ("Brand was born in Berlin" in "August Brand", not "Max Brand …"), or
    by "he"/"she" as the subject of its main clause when it names no other person ("He
    was born in Paris" in "Nikolai Kinski"), or by an opening "it" ("It was founded by
    …" in a memo about Initech)."""
    wanted = words(name)
    if not wanted or not any(words(t) == wanted for t in titles):
        return False
    people = [e for e in doc.ents if e.label_ == "PERSON"]
    surname = wanted[-1]
    # the surname alone, not inside another person's name ("Max Brand")
    alone = [
        t
        for t in doc
        if t.lower_ == surname
        and not any(e.start <= t.i < e.end and words(e.text) != [surname] for e in people)
    ]
    if len(wanted) > 1 and alone:
        return True
    # "He was born in Paris": he or she as the main clause's subject, no one else named;
    # "It was founded in 1998 by …": "it" opening the claim as its main clause's subject
    return any(
        t.dep_ in ("nsubj", "nsubjpass")
        and t.head.dep_ == "ROOT"
        and ((t.lower_ in ("he", "she") and not people) or (t.lower_ == "it" and t.i == 0))
        for t in doc
    )


def runs_in(wanted: list[str], words: list[str]) -> bool:
    n = len(wanted)
    return any(words[i : i + n] == wanted for i in range(len(words) - n + 1))


def proper_words(doc: Any) -> set[str]:
    """The words of the names a text gives, without the last word of a name that is not a
    person's: "Umbrella" of "Umbrella Corporation" says which one, "Corporation" only
    what kind (two claims naming different corporations are not about the same thing;
    "Wood" of "Ed Wood" is the surname that says who)."""
    kinds = {t.i for e in doc.ents if e.label_ != "PERSON" and len(e) > 1 for t in e[-1:]}
    return {
        t.lower_
        for t in doc
        if t.pos_ == "PROPN" and len(t.text) > 2 and not t.is_stop and t.i not in kinds
    }


def chained(texts: list[Any], documents: list[set[str]], answer: str) -> list[int]:
    """The claims that form one chain with those stating the answer: linked by a name
    they share or by citing the same document. A claim about something else that
    happens to name the question's words is not evidence for the answer ("EMA … from
    South Dakota" does not answer where Vera Dua was born, even next to a claim naming
    Vera Dua). (Yes/no and choice answers are not chained: each branch is its own.)"""
    stating = [i for i, t in enumerate(texts) if names(t, answer)]
    if not stating or len(texts) == 1:
        return list(range(len(texts)))
    proper = [proper_words(t) for t in texts]
    reached = set(stating)
    todo = list(stating)
    while todo:
        i = todo.pop()
        for j in range(len(texts)):
            if j not in reached and (proper[i] & proper[j] or documents[i] & documents[j]):
                reached.add(j)
                todo.append(j)
    return sorted(reached)


def attribute_of(answer: str, stating: list[Any], anchors: list[str]) -> bool:
    """Whether a claim says a named thing of the question *is* the answer: an
    apposition or copula links them, or the answer is coordinated with what does
    ("X was a soldier and politician")."""
    for doc in stating:
        for span in spans_of(doc, answer):
            head = span.root
            while head.dep_ == "conj" and head.head.i != head.i:
                head = head.head
            if head.pos_ not in ("NOUN", "PROPN", "ADJ"):
                continue
            for target in (name_root(t) for name in anchors for t in finds(doc, name)):
                path = path_between(head, target)
                if (
                    path is not None
                    and len(path) <= 4
                    and identity_path(path)
                    and not any(_hedged(t) for t in path)
                ):
                    return True
    return False


def _hedged(token: Any) -> bool:
    """Whether a word on the path is negated, modal or conditional ("was never a
    lawyer", "would be a doctor if …", "is not a soldier")."""
    return any(
        c.dep_ == "neg"
        or c.lower_ in ("never", "no")
        or (c.dep_ == "aux" and c.tag_ == "MD")
        or (c.dep_ == "mark" and c.lower_ in ("if", "unless"))
        for c in token.children
    ) or any(
        c.dep_ == "advcl" and any(g.lower_ in ("if", "unless") for g in c.children)
        for c in token.children
    )


def detached(asked: Any, answer: str, stating: list[Any], texts: Sequence[Any] = ()) -> str | None:
    """Why the answer is not stated *by* the verb the question asks about (None: it is,
    or no claim uses that verb).

    "Where was Tom Lenz born?" is not answered by "Paris" in "Tom Lenz was born in 1950
    and lives in Paris" (Paris belongs to "lives"), nor in "Tom Lenz was not born in
    Paris" (negated), nor by "Pied Piper is based in Palo Alto" chained to "Richard
    Hendricks was born in Tulsa" (the verb asked is said, but not of the answer)."""
    wh = next((t for t in asked if t.lower_ in _ASKING_WORDS), None)
    verb = wh.head if wh is not None else None
    while verb is not None and verb.pos_ != "VERB" and verb.head.i != verb.i:
        verb = verb.head
    last = [t for t in asked if not t.is_punct][-1:]
    if wh is not None and (verb is None or verb.pos_ != "VERB") and last[0].pos_ == "VERB":
        verb = last[0]  # "Where was the founder of … born?" parsed with "born" on "founder"
    if verb is None or verb.pos_ != "VERB" or verb.lemma_ in ("be", "have", "do"):
        return None
    forms = {verb.lemma_.lower(), verb.lower_}
    uses = [
        (d, t)
        for d in stating
        for t in d
        if t.lemma_.lower() in forms
        or t.lower_ in forms
        or (t.pos_ == "NOUN" and same_stem(verb.lemma_.lower(), t.lemma_.lower()))
    ]
    if not uses:
        lives = verb.lemma_.lower() in life_events(answer, stating) or any(
            answer in aside for d in stating for aside in re.findall(r"\(([^()]*)\)", d.text)
        )  # "(1 May 1901 - 9 June 1980)": when he was born and died
        if lives or not any(t.lemma_.lower() in forms for d in texts for t in d):
            return None
        return f"the claims say {verb.text!r} of something other than {answer!r}"
    for doc, used in uses:
        if _hedged(used) or (used.pos_ == "NOUN" and _unrealised(used)):
            continue
        for span in spans_of(doc, answer):
            path = path_between(span.root, used)
            if (
                path is not None
                and len(path) <= 5
                and not any(p.pos_ == "VERB" for p in path[1:-1])
            ):
                return None
    return f"no supported claim states {answer!r} as what {verb.text!r} says (or it denies it)"


_ASKING_WORDS = frozenset("who whom what which when where".split())

#: Verbs whose object is an event that did not (yet) happen: "abandoned its acquisition".
_UNREALISING = frozenset(
    "abandon cancel block reject terminate drop withdraw oppose halt propose plan seek "
    "consider explore discuss attempt deny postpone delay suspend prevent".split()
)


def _unrealised(noun: Any) -> bool:
    """Whether the event a noun names is denied, hedged or not carried out by the verbs
    it depends on ("did not complete its acquisition", "abandoned its acquisition",
    "plans an acquisition")."""
    head = noun
    for _ in range(4):
        if head.head.i == head.i:
            return False
        head = head.head
        if head.pos_ in ("VERB", "AUX") and (_hedged(head) or head.lemma_ in _UNREALISING):
            return True
    return False


def located_at(anchors: list[str], texts: list[Any], places: frozenset[str]) -> bool:
    """Whether a claim puts a name of the question somewhere: a locative preposition
    ("in", "at" …) on the name itself or on the verb whose subject it is ("Lake Tana is
    in Ethiopia", "the okapi lives in the Congo"; not "… a trader from Boston", not "the
    giraffe, which lives in Kenya")."""
    for doc in texts:
        named = {t.i for a in anchors for span in spans_of(doc, a) for t in span}
        for token in doc:
            if token.lower_ not in places or token.dep_ != "prep":
                continue
            head = token.head
            if head.i in named:
                return True
            subjects = [c for c in head.children if c.dep_ in ("nsubj", "nsubjpass")]
            if any(s.i in named or any(g.i in named for g in s.subtree) for s in subjects):
                return True
    return False


def lacking(anchors: list[str], wanted: set[str], texts: list[Any]) -> str | None:
    """The first name no claim describes with every one of ``wanted`` (lemmas; a people
    or country word matches the same country), or None."""
    for anchor in anchors:
        if not any(
            names(doc, anchor)
            and all(
                w in {t.lemma_.lower() for t in doc}
                or (
                    country_key(w) is not None
                    and any(country_key(t.text) == country_key(w) for t in doc)
                )
                for w in wanted
            )
            for doc in texts
        ):
            return anchor
    return None


_WH_WORDS = frozenset("who whom whose what which when where why how".split())
# words a question uses to ask, not to say what it asks about
_GENERIC = frozenset(
    "name names kind type sort one ones thing things person people part way "
    "time year date day called known also".split()
)


def anchors_of(asked: Any) -> list[str]:
    """The names a question asks about: its entities and proper-noun runs."""
    names: list[str] = []
    covered: set[int] = set()
    for ent in asked.ents:
        if ent.label_ in ("DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY"):
            continue
        names.append(ent.text.removesuffix("'s").strip())
        covered.update(t.i for t in ent)
    run: list[Any] = []
    for token in [*asked, None]:
        if token is not None and token.pos_ == "PROPN" and token.i not in covered:
            run.append(token)
            continue
        if run:
            names.append(" ".join(t.text for t in run))
        run = []
    return [n for n in dict.fromkeys(names) if n and n.lower() not in _WH_WORDS]


def relation_words(asked: Any, anchors: list[str]) -> list[str]:
    """The question's words that say what it asks about (lemmas)."""
    named = {w for a in anchors for w in words(a)}
    out = []
    for token in asked:
        predicate = token.dep_ == "ROOT" and token.pos_ == "ADV"  # "did Scrooge live" (ADV)
        if (token.pos_ not in ("NOUN", "VERB", "ADJ") and not predicate) or token.is_stop:
            continue
        lemma = token.lemma_.lower()
        if lemma in _GENERIC or token.lower_ in named or lemma in _WH_WORDS:
            continue
        if token.pos_ == "NOUN" and _type_word(token, named):
            continue  # "the novel The Salt Road", "which river": the kind, not the relation
        out.append(lemma)
    return list(dict.fromkeys(out))


def _type_word(token: Any, named: set[str]) -> bool:
    """Whether a noun names the kind of a thing the question names or asks for."""
    if any(c.lower_ in ("which", "what") and c.dep_ == "det" for c in token.children):
        return True
    near = [*token.children, token.head]
    return any(
        t.lower_ in named and t.dep_ in ("appos", "compound", "pobj", "nsubj", "dobj", "attr")
        for t in near
    ) and not any(c.dep_ == "poss" for c in token.children)


def coreferent(
    name: str, texts: list[Any], stating: list[Any], documents: Sequence[set[str]]
) -> bool:
    """Whether a claim stating the answer speaks of ``name`` by a pronoun: it opens with
    "he", "she" or "they" as its subject, and the other claims of its document name
    ``name`` and no other person ("Karl Rosenmund was a German chemist. He was born in
    Berlin")."""
    if len(documents) != len(texts):
        return False
    for n, doc in enumerate(texts):
        first = next((t for t in doc if not t.is_punct and not t.is_space), None)
        if doc not in stating or first is None:
            continue
        if not (first.lower_ in _PRONOUNS and first.dep_ in ("nsubj", "nsubjpass")):
            continue
        same = [t for i, t in enumerate(texts) if documents[i] & documents[n] and i != n]
        others = {e.text for t in same for e in people(t) if not _same_person(e.text, name)}
        if any(names(t, name) for t in same) and not others:
            return True
    return False


def _same_person(written: str, name: str) -> bool:
    """Whether a person's name as written stands for ``name`` (the same words, part of
    them, or one a shortened form of the other)."""
    a, b = words(written), words(name)
    return bool(a) and (set(a) <= set(b) or shortened(b, a) or shortened(a, b))


def life_events(answer: str, stating: list[Any]) -> set[str]:
    """What a life written as a range says of a place in it: "(10 November 1875 in
    Vienna - 4 April 1934 in Graz)" gives Vienna as the place of birth and Graz as the
    place of death (the words a question would use for them)."""
    wanted = re.escape(" ".join(answer.split()))
    out: set[str] = set()
    for doc in stating:
        for aside in re.findall(r"\(([^()]*)\)", doc.text):
            halves = re.split(r"\s[-\u2013\u2014]\s|[\u2013\u2014]", aside, maxsplit=1)
            if len(halves) != 2:
                continue
            for half, said in zip(halves, (_BORN, _DIED), strict=True):
                dated = re.search(r"\d{3,4}", half)
                placed = re.search(rf"\bin\s+(?:[\w.'-]+,?\s+){{0,3}}?{wanted}\b", half)
                if dated and placed:
                    out |= said
    return out


_PRONOUNS = frozenset({"he", "she", "they"})
_BORN = frozenset({"bear", "born", "birth", "birthplace"})
_DIED = frozenset({"die", "died", "death"})


def lemmas(doc: Any) -> set[str]:
    return {t.lemma_.lower() for t in doc} | {t.lower_ for t in doc}


def said(word: str, lemmas: set[str], inverses: Mapping[str, frozenset[str]]) -> bool:
    """Whether a word the question asks about is said among ``lemmas``: the word, its
    inverse ("child" for "parent"), or a word of the same stem ("acquisition" for
    "acquire", "founder" for "found", "composition" for "compose"). Words of the same
    stem share their first five letters and all but the last two of the shorter one's."""
    if word in lemmas or inverses.get(word, frozenset()) & lemmas:
        return True
    return len(word) >= 5 and any(same_stem(word, w) for w in lemmas)


def same_stem(a: str, b: str) -> bool:
    """Whether two words are one word or share a stem ("acquire"/"acquisition"): their
    first five letters and all but the last two of the shorter one's."""
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a == b or (n >= 5 and n >= min(len(a), len(b)) - 2)
