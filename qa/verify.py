"""Checks that an answer's sentences say only what the exact spans they cite say (pure functions, no model).

check(claim, span) decides whether one sentence of the document entails a claim, by rules a paraphrase cannot fool:
every number (as a value with its unit), date, name and negation of the claim must agree with that sentence, each
number must sit in the part of the sentence the claim talks about, and every content word of the claim must be in
the sentence (or be a listed paraphrase of one of its words). A claim whose facts come from two sentences is supported
by neither: spans are single sentences. Across languages (a French claim over an English sentence) words cannot be
compared without a translation: numbers, dates, names and negation must still agree, and at least half of the content
words must have a cognate or a listed translation in the sentence (measured by scripts/bench_verify.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from .quantities import MONTHS, Quantity, kind, matches, quantities
from .text import Lang, content_words, detect_language, fold, sentence_spans, tokenize

_MARKER = re.compile(r"\s*\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"\b[A-ZÀ-Ý][\w’'-]*(?:\s+[A-ZÀ-Ý][\w’'-]*)*")

Rule = Literal["supported", "quote", "empty", "number", "name", "negation", "content", "role"]


@dataclass(frozen=True)
class Verdict:
    supported: bool
    reason: str  # one sentence: why the span does (not) support the claim
    rule: Rule = "supported"  # the rule that decided

    def __bool__(self) -> bool:
        return self.supported


@dataclass
class Claim:
    text: str  # the sentence without its markers
    cites: list[int]  # marker numbers, in order


def parse_claims(answer: str, lang: Lang) -> list[Claim]:
    """Split an answer into sentences, each with the [n] markers that follow or end it."""
    claims: list[Claim] = []
    for a, b in sentence_spans(answer, lang):
        sentence = answer[a:b]
        lead = re.match(r"(?:\s*\[\d+\])+", sentence)  # "… workforce. [1] Next …": a leading marker closes the previous one
        if lead and claims:
            claims[-1].cites.extend(int(n) for n in _MARKER.findall(lead.group()))
            sentence = sentence[lead.end():]
        cites = [int(n) for n in _MARKER.findall(sentence)]
        body = _MARKER.sub("", sentence).strip()
        if not re.search(r"\w", body):  # a lone marker split off by the sentence splitter
            if claims:
                claims[-1].cites.extend(cites)
            continue
        claims.append(Claim(body, cites))
    return claims


def complete_sentences(text: str, lang: Lang) -> tuple[list[str], str]:
    """(the complete sentences of a growing text, with their markers; the rest, maybe unfinished)."""
    spans = sentence_spans(text, lang)
    done: list[str] = []
    cut = 0
    for (a, b), (c, _) in zip(spans, spans[1:]):
        lead = re.match(r"(?:\s*\[\d+\])+", text[c:])  # markers after the full stop belong to the sentence before
        if lead and not re.search(r"\w", text[c + lead.end():].lstrip(" [0123456789]")):
            break  # only markers so far: the next sentence has not started
        end = c + lead.end() if lead else b
        done.append(text[cut:end].strip())
        cut = end
    return done, text[cut:]


# --- words, clauses, negation --------------------------------------------------------------------------------

_NEG_EN = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "nowhere",
           "failed", "fail", "fails", "failing", "refused", "refuse", "refuses", "unable", "lack", "lacks", "lacked"}
_NEG_FR = {"pas", "jamais", "aucun", "aucune", "aucuns", "aucunes", "sans", "ni", "rien", "nul", "nulle", "guere",
           "nullement", "non", "echoua", "echoue", "refusa", "refuse"}
_NEG_AFTER_NE = {"plus", "personne", "point"}
_CLAUSE_WORDS = {"and", "but", "while", "whereas", "although", "though", "which", "who", "whom", "whose", "where",
                 "et", "mais", "tandis", "alors", "qui", "dont", "ou", "lorsque", "because", "car", "puisque"}
_QUANTIFIERS = {"few", "many", "most", "all", "each", "every", "several", "much", "little", "majority", "minority",
                "peu", "beaucoup", "plupart", "tous", "toutes", "chaque", "nombreux", "nombreuses", "plusieurs"}
_SUPERLATIVE = {"most", "least", "plus", "moins"}
_PRONOUNS = {"it", "they", "he", "she", "il", "elle", "ils", "elles"}
_DETERMINERS = {"the", "this", "these", "that", "le", "la", "les", "l", "cette", "ce", "cet", "ces"}
# Words that carry no fact a span must hold: discourse markers, hedges and framing a model adds.
_NEUTRAL = {fold(w) for w in (
    "also", "notably", "particularly", "especially", "indeed", "moreover", "furthermore", "however", "thus", "therefore",
    "according", "document", "documents", "passage", "passages", "text", "source", "sources", "says", "say", "said",
    "mention", "mentions", "mentioned", "notamment", "également", "aussi", "ainsi", "donc", "cependant", "toutefois",
    "selon", "indique", "précise", "respectively", "respectivement", "approximately", "roughly", "about", "around",
    "nearly", "almost", "some", "environ", "presque", "près", "quelque", "quelques", "estimated", "estimé", "estimée",
    "exactly", "exactement", "just", "vers", "lies", "lie", "located", "situated", "située", "situé", "situés",
    "situées", "trouve", "grâce", "lors", "compte", "comptait", "comptent", "compter", "comptaient", "people", "persons", "individuals", "personnes",
    "per", "par", "became", "become", "becomes", "devint", "devenu", "devenue", "devient", "measures", "measure",
    "measuring", "mesure", "mesurent", "mesurait")}
# Paraphrases and translations a model commonly writes: a claim word may stand for any word of its group. Entries of
# five letters or more match as prefixes of a word or of its stem; shorter ones match whole words or stems.
_SYNONYMS = [
    "make account represent constitut compris form compos make made forme represente",
    "compan firm business enterpris corporat entrepris societ",
    "large big biggest largest major grand",
    "main principal primar chief leading key major",
    "many numerous multipl several various nombreu plusieur",
    "help aid assist support aide soutien soutient soutenu",
    "found founded establish creat set fonde fondee cree creee institu",
    "start begin began begun launch commenc debut lance",
    "show demonstr indicat reveal montr",
    "use used using utilis employ",
    "grow growth expand expans increas rise rose croiss croit augment",
    "speed acceler hasten quicken faster",
    "aim aims aimed dedicat devot intend designed vise visent viser dedie consacr destine",
    "ensur guarant assur garant",
    "foster promot encourag nurtur favoris favoriser",
    "win won wins winning earn earned secur clinch obtain gain remport gagn obten",
    "beat defeat overcame battu battr vainqu bat",
    "home host hosts hosted housed houses accueil abrit heberg",
    "call called name named known termed dubbed appel nomme surnomm baptis",
    "city town ville villes",
    "region area zone",
    "role part",
    "important signific crucial essential vital key",
    "top leading forefront pointe",
    "rapid fast quick swift",
    "worker employe staff workforc personnel effectif salari",
    "engineer ingenieur",
    "research recherch",
    "industr sector secteur",
    "country countri nation pays",
    "world global mondial international",
    "game match",
    "play played held hold took take joue jouer dispute deroul",
    "donat donor gift give gave given contribut don donne offert",
    "student pupil etudiant eleve",
    "enrol admit accueil inscri compt",
    "merge merging merged combin fusion fusionn",
    "propos suggest plan",
    "approv adopt ratif approuv",
    "attend visit assist",
    "travel trip visit voyag deplac",
    "average mean moyen moyenne",
    "charg cost price fee factur cout",
    "commercial advert spot publicit",
    "broadcast aired televis diffus retransm",
    "popul inhabit resident people habitant",
    "season saison",
    "champion title titre winner vainqueur",
    "announc declar annonc",
    "chart mapped explor cartograph",
    "attack assault raid attaqu",
    "kill killed slew slain tue tua tuerent",
    "soldier troop soldat",
    "tenure mandat",
    "change transform reform chang",
    "campaign campagn",
    "fundrais levee fonds",
    "phase stage etape",
    "public publique",
    "feature characterist hallmark caracterist trait",
    "close strong tight etroit",
    "collabor cooperat partnership cooper",
    "versatil flexib adaptab polyval",
    "technolog techniqu",
    "device equipment apparatus dispositif apparei",
    "applicat",
    "transfer transfert",
    "vibrant dynami thriving lively",
    "ideal perfect",
    "renown famous reputed prestigi renomm repute",
    "emerg become became becom devien devenu",
    "favour favor prefer privileg favori",
    "destination choice choix",
    "remain stay rest demeur reste",
    "integrat incorpor integr",
    "enabl allow permit permet let",
    "north nord", "south sud", "west ouest", "east",
    "new nouveau nouvel nouvelle",
    "old ancien vieux vieil",
    "high haut eleve",
    "small petit",
    "war guerre", "king roi", "church eglise", "river fleuve riviere", "sea mer", "island ile",
    "team equipe", "league ligue", "player joueur", "school ecole", "university universit", "teacher enseignant professeur",
    "law loi droit", "court tribunal cour", "member membre", "government gouvernement", "president",
    "light lumiere", "speed vitesse", "water eau", "glass verre", "fire feu", "element",
    "built construit bati", "discover decouv", "death mort", "born", "died mort mouru", "settlement colonie",
    "include inclu compren comprend", "county comte", "share part", "year annee", "people gens personnes",
    "french francais francaise", "english anglais anglaise", "spanish espagnol", "british britanniq", "american americain",
    "german allemand", "european europeen", "roman romain", "greek grec",
    "explorer explorat", "force forces", "vacuum vide", "refract refraction", "index indice", "diamond diamant",
    "ordinary ordinaire", "commune", "populous peuple", "after apres", "before avant", "since depuis",
    "fiber fibre", "mode modes", "core coeur", "attenuat", "distance", "link liaison", "infrared infrarouge",
    "wavelength longueur", "convention", "second seconde", "only seul", "club", "unsuccess echec",
    "metropol agglomer", "require requir must need necess exig doivent doit", "prize prix",
    "state etat etats", "united unis", "kingdom royaume", "middle moyen", "orient", "few peu", "many numerous much beaucoup nombreu plusieurs",
    "most majority plupart", "total overall", "all every each entire whole tous toutes chaque ensemble",
]
_SYN: dict[str, set[int]] = {}
for _i, _line in enumerate(_SYNONYMS):
    for _w in _line.split():
        _SYN.setdefault(fold(_w), set()).add(_i)
_SYN_LONG = sorted((k for k in _SYN if len(k) >= 5), key=len, reverse=True)


@lru_cache(maxsize=50000)
def _groups(folded: str, stem: str) -> frozenset[int]:
    out: set[int] = set(_SYN.get(folded, ())) | set(_SYN.get(stem, ()))
    for k in _SYN_LONG:
        if folded.startswith(k) or (stem and stem.startswith(k)):
            out |= _SYN[k]
    return frozenset(out)


@dataclass
class _Word:
    text: str  # as written
    fold: str  # folded (lowercase, no accents)
    stem: str  # stemmed in the text's language ("" for a stop word or a neutral word)
    start: int
    end: int
    clause: int  # index of the clause it belongs to
    cap: bool  # capitalised
    first: bool  # opens the sentence (or a quote)
    negated: bool = False  # governed by a negation


@dataclass
class _Parsed:
    text: str
    lang: Lang
    words: list[_Word]
    quantities: list[Quantity]

    def stems(self, clause: int | None = None) -> list[_Word]:
        return [w for w in self.words if w.stem and (clause is None or w.clause == clause)]


@lru_cache(maxsize=50000)
def _stem(word: str, lang: Lang) -> str:
    out = tokenize(word, lang)
    return out[0] if out else ""


_SUFFIXES = sorted({fold(s) for s in (
    "iques", "ique", "ics", "ic", "ies", "ie", "y", "ités", "ité", "ity", "ite", "té", "ty", "tions", "tion", "sion",
    "aires", "aire", "ary", "eurs", "eur", "euse", "ors", "or", "ers", "er", "elle", "elles", "el", "als", "al", "ale",
    "ales", "aux", "isme", "ism", "iste", "ist", "ives", "ive", "ifs", "if", "ements", "ement", "ments", "ment", "ing",
    "ed", "ées", "ée", "és", "é", "es", "e", "s", "x", "ness")}, key=len, reverse=True)


@lru_cache(maxsize=50000)
def _root(word: str) -> str:
    """A crude cross-language root: folded, derivational and plural endings removed (optique/optics -> opt)."""
    w = fold(word)
    for _ in range(2):
        for s in _SUFFIXES:
            if w.endswith(s) and len(w) - len(s) >= 3:
                w = w[: -len(s)]
                break
    return w


def _cognate(a: str, b: str, cross: bool) -> bool:
    """Same root, or roots sharing a long enough beginning (presence/present, investissements/investments)."""
    ra, rb = _root(a), _root(b)
    if ra == rb and len(ra) >= 3:
        return True
    n = 0
    for x, y in zip(ra, rb):
        if x != y:
            break
        n += 1
    need = 5 if cross else 6
    return n >= need and n >= 0.7 * min(len(ra), len(rb))


def _same(w: _Word, x: _Word, cross: bool) -> bool:
    """Whether span word x says what claim word w says: same stem or word, a cognate, or a listed paraphrase."""
    if w.fold == x.fold:
        return True
    if w.stem and w.stem == x.stem:
        return True
    if "-" in w.stem or "-" in x.stem:  # compounds match whole compounds only
        return False
    if not x.stem and len(x.fold) < 4:
        return False
    if _cognate(w.fold, x.fold, cross):
        return True
    gw = _groups(w.fold, w.stem)
    return bool(gw and gw & _groups(x.fold, x.stem or x.fold))


def _found(w: _Word, s: _Parsed, cross: bool, lang: Lang) -> bool:
    """Whether the span says claim word w: a word that says the same, the parts of a compound, or an acronym's words."""
    if any(_same(w, x, cross) for x in s.words):
        return True
    parts = [p for p in w.text.split("-") if p]
    if len(parts) > 1:
        return all(_found(_Word(p, fold(p), _stem(p, lang) or fold(p), 0, 0, 0, p[:1].isupper(), False), s, cross, lang)
                   for p in parts)
    if w.text.isupper() and 2 <= len(w.text) <= 6:  # GDP: gross domestic product; US: United States
        initials = [x.fold[0] for x in s.words if x.stem or x.cap]
        return w.fold in "".join(initials)
    return False


_TOKEN = re.compile(r"\w[\w'&-]*|[,;:()\[\]—–«»\"“”]|\.(?=\s|$)")


def _parse(text: str, lang: Lang) -> _Parsed:
    text = text.replace("’", "'").replace("**", "")
    text = re.sub(r"\b((?:[A-Z]\.){2,})", lambda m: m.group(1).replace(".", "") + " " * m.group(1).count("."), text)
    qs = quantities(text, lang)
    inside = [False] * (len(text) + 1)
    for q in qs:
        for i in range(q.start, q.end):
            inside[i] = True
    words: list[_Word] = []
    clause, boundary, sentence_start = 0, False, True
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if inside[m.start()]:
            sentence_start = False
            continue
        if tok in "–—" and re.match(r"\d", text[m.end():m.end() + 1]) and re.search(r"\d$", text[:m.start()]):
            continue  # a score or a range (24–10, 1893–1938), not a pause
        if not tok[0].isalnum() and tok[0] != "_":
            if tok in "«“\":." or tok == ".":
                sentence_start = True
            if tok not in "«»\"“”":
                boundary = True
            continue
        if inside[m.start()]:
            sentence_start = False
            continue
        f = fold(tok)
        if (boundary or f in _CLAUSE_WORDS) and words:
            clause += 1
        boundary = False
        for piece, offset in _split_elision(tok):
            pf = fold(piece)
            stem = "" if pf in _NEUTRAL else (_stem(piece, lang) if content_words(piece, lang) else "")
            stem = pf if pf in _QUANTIFIERS else stem  # "few" and "many" are facts, not function words
            if piece.casefold() in ("né", "née", "nés", "nées"):  # born, not the negation "ne"
                stem = "ne-born"
            if "-" in piece.strip("-"):  # a compound ("sous-préfecture") is one word: all its parts
                stem = "-".join(_stem(x, lang) or fold(x) for x in piece.split("-") if x)
            words.append(_Word(piece, pf, stem, m.start() + offset, m.start() + offset + len(piece), clause,
                               piece[:1].isupper(), sentence_start))
            sentence_start = False
    parsed = _Parsed(text, lang, words, qs)
    _mark_negation(parsed)
    _merge_empty_clauses(parsed)
    return parsed


def _split_elision(token: str) -> list[tuple[str, int]]:
    m = re.match(r"(?i)(qu|[cdjlmnst])'(?=\w)", token)
    if m:
        return [(token[: m.end() - 1], 0), (token[m.end():], m.end())]
    if token.casefold().endswith("n't"):
        return [(token[:-3], 0), ("not", len(token) - 3)]
    if token.casefold().endswith("'s"):
        return [(token[:-2], 0)]
    return [(token, 0)]


def _merge_empty_clauses(p: _Parsed) -> None:
    """A clause without content words ("In 1990", "(40 km)") belongs to the next one (the last one, at the end)."""
    ids = sorted({w.clause for w in p.words})
    full = {c for c in ids if any(w.stem for w in p.words if w.clause == c)}
    remap, pending = {}, []
    for c in ids:
        pending.append(c)
        if c in full:
            remap.update({x: c for x in pending})
            pending = []
    last = max(full, default=ids[-1] if ids else 0)
    remap.update({x: last for x in pending})
    for w in p.words:
        w.clause = remap[w.clause]


def _quantity_clause(p: _Parsed, q: Quantity) -> int:
    """The clause a number belongs to: that of the word before it, unless punctuation separates them."""
    before = [w for w in p.words if w.end <= q.start]
    after = [w for w in p.words if w.start >= q.end]
    gap = re.sub(r"\d[–—-](?=\d)", "", p.text[before[-1].end:q.start]) if before else ""
    if before and not re.search(r"[,;:(—–]", gap):
        return before[-1].clause
    if after:
        return after[0].clause
    return before[-1].clause if before else 0


def _mark_negation(p: _Parsed) -> None:
    """Mark the word each negation governs (the next content word; an adverb passes it on to the word after)."""
    words = p.words
    for i, w in enumerate(words):
        nxt = words[i + 1].fold if i + 1 < len(words) else ""
        cue = (w.fold in _NEG_EN and not (w.fold == "not" and nxt == "only")) \
            or (w.fold in _NEG_FR and not (w.fold == "non" and (nxt == "seulement" or p.text[w.end:w.end + 1] == "-"))) \
            or (w.fold in ("ne", "n") and any(x.fold in _NEG_FR or x.fold in _NEG_AFTER_NE for x in words[i + 1 : i + 5]))
        if not cue:
            continue
        w.stem = ""
        for x in words[i + 1 :]:
            if x.fold in _NEG_AFTER_NE or x.fold in _NEG_FR or x.fold in _NEG_EN:
                x.stem = ""
                continue
            if x.stem:
                x.negated = True
                if not (x.fold.endswith("ly") or x.fold.endswith("ment")):
                    break


# --- the verdict ---------------------------------------------------------------------------------------------

def _clean(claim: str) -> str:
    claim = _MARKER.sub("", claim).replace("**", "")
    return re.sub(r"^[\s\"'«“”»]+|[\s\"'«“”»]+$", "", claim.strip()).strip()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", fold(text)).strip()


def _words_norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", fold(text.replace("’", "'"))))


def _is_quote(claim: str, span: str) -> bool:
    """The claim is a piece of the span, word for word (a short answer phrase, or a quote)."""
    c, s = _words_norm(claim), _words_norm(span)
    return bool(c) and f" {c} " in f" {s} "


def check(claim: str, span: str, lang: Lang | None = None, span_lang: Lang | None = None) -> Verdict:
    """Whether span (one sentence of a document) entails claim: numbers, dates, names, negation and content agree."""
    text = _clean(claim)
    if not re.search(r"\w", text):
        return Verdict(False, "The sentence is empty.", "empty")
    lang = lang or detect_language(text)
    span_lang = span_lang or detect_language(span)
    c, s = _parse(text, lang), _parse(span, span_lang)
    cross = lang != span_lang
    quote = _is_quote(text, span)

    # numbers and dates: each one as a value with its unit, in the part of the span the claim talks about
    for q in c.quantities:
        literal = c.text[q.start:q.end]
        same = [x for x in s.quantities if matches(q, x)]
        if not same:
            return Verdict(False, f"The number “{literal}” is not in the cited span.", "number")
        rivals = [x for x in s.quantities if x not in same and kind(x) == kind(q)]
        if quote or not rivals:
            continue
        want = c.stems(_quantity_clause(c, q)) or c.stems()
        near_rivals = set().union(*(_overlap(want, s, _quantity_clause(s, x), cross) for x in rivals))
        near_same = set().union(*(_overlap(want, s, _quantity_clause(s, x), cross) for x in same))
        if near_rivals - near_same and not near_same - near_rivals:  # the claim's words point at another number only
            return Verdict(False, f"In the cited span, “{literal}” belongs to another fact.", "number")
        around = _near(c, q)  # the same test with the words right next to the numbers, where a name decides
        next_rivals = {w.stem for w in around if any(_same(w, x, cross) for r in rivals for x in _near(s, r))}
        next_same = {w.stem for w in around if any(_same(w, x, cross) for r in same for x in _near(s, r))}
        names = {w.stem for w in around if w.cap and not w.first}
        if (next_rivals - next_same and not next_same - next_rivals) or \
                (names & (next_rivals - next_same) and not names & (next_same - next_rivals)):
            return Verdict(False, f"In the cited span, “{literal}” goes with other words.", "number")

    if quote:
        if _negation_breaks(c, s, cross):
            return Verdict(False, "The cited span negates what the quote says.", "negation")
        return Verdict(True, "The sentence is a quote of the cited span.", "quote")

    # names: capitalised words that do not open the sentence must be in the span
    for w in c.words:
        if w.cap and not w.first and w.fold not in MONTHS and (w.stem or w.text.isupper()):
            if not any(x.fold == w.fold or (w.stem and x.stem == w.stem) or _cognate(w.fold, x.fold, cross)
                       or (cross and _same(w, x, cross)) for x in s.words) and not _found(w, s, cross, lang):
                return Verdict(False, f"The name “{w.text}” is not in the cited span.", "name")

    if _negation_breaks(c, s, cross):
        return Verdict(False, "The claim and the cited span disagree on a negation.", "negation")
    unverifiable = [w for w in c.words if w.negated and not _found(w, s, cross, lang)]
    if unverifiable:
        return Verdict(False, f"The cited span does not say what the claim negates (“{unverifiable[0].text}”).", "negation")
    ranked = _unranked_superlative(c, s, cross)
    if ranked:
        return Verdict(False, ranked, "number")

    # content words: all of them in the span (or a paraphrase of one); across languages (no translation), half of them
    missing = [w for w in c.stems() if not _found(w, s, cross, lang)]
    if missing and not cross and len(missing) == 1 and _stands_for_pronoun(missing[0], c, s):
        missing = []
    content = c.stems()
    if not content and not c.quantities:
        return Verdict(False, "The sentence states nothing to check.", "empty")
    if missing and (not cross or len(missing) > 0.5 * len(content)):
        said = " ".join(w.text for w in missing[:4])
        return Verdict(False, f"The cited span does not say “{said}”.", "content")

    flipped = _participle_flip(c, s)
    if flipped:
        return Verdict(False, flipped, "content")
    role = _role_swap(c, s, cross)
    if role:
        return Verdict(False, role, "role")
    return Verdict(True, "Every number, name, negation and content word of the sentence is in the cited span.")


def _unranked_superlative(c: _Parsed, s: _Parsed, cross: bool) -> str | None:
    """'the most populous' for 'the second most populous': a superlative the span ranks needs the rank."""
    if not any(w.fold in _SUPERLATIVE or w.fold.endswith("est") for w in c.words):
        return None
    claim_ranks = [q for q in c.quantities if q.unit == "ord"]
    for q in s.quantities:
        if q.unit != "ord" or any(matches(r, q) for r in claim_ranks):
            continue
        ranked = [x for x in s.words if x.start >= q.end][:4]
        if not any(x.fold in _SUPERLATIVE or x.fold.endswith("est") for x in ranked):
            continue
        if any(_same(w, x, cross) for w in c.words if w.stem for x in ranked if x.stem):
            return f"The cited span ranks it “{s.text[q.start:q.end]}”, which the sentence leaves out."
    return None


def _near(p: _Parsed, q: Quantity, reach: int = 3) -> list[_Word]:
    """The content words next to a number: up to `reach` on each side, in its clause, not past punctuation or another
    number of its kind."""
    stops = [x.start for x in p.quantities if x is not q and kind(x) == kind(q)]
    home = _quantity_clause(p, q)
    def pause(gap: str) -> bool:  # a short parenthesis of numbers ("25 miles (40 km) south") is no pause
        return bool(re.search(r"[,;:()]", re.sub(r"\(\s*\d[^()]{0,18}\)", "", gap)))
    words = [w for w in p.words if w.clause == home or w.start > q.end]
    left = [w for w in words if w.end <= q.start and w.clause == home and not any(w.end <= t < q.start for t in stops)
            and not pause(p.text[w.end:q.start])]
    right = [w for w in words if w.start >= q.end and not any(q.end <= t < w.start for t in stops)
             and not pause(p.text[q.end:w.start])]
    return [w for w in left if w.stem][-reach:] + [w for w in right if w.stem][:reach]


def _stands_for_pronoun(w: _Word, c: _Parsed, s: _Parsed) -> bool:
    """'The city has 870,000 inhabitants' for 'it has 870,000 inhabitants': the claim's subject noun names what the
    span's pronoun refers to (a common noun only: a name is never taken on trust)."""
    k = c.words.index(w)
    opens = all(x.fold in _DETERMINERS for x in c.words[:k]) and k <= 2
    return opens and not w.cap and any(x.fold in _PRONOUNS for x in s.words)


def _overlap(want: list[_Word], s: _Parsed, clause: int, cross: bool) -> set[str]:
    """The claim words (stems) that the span's clause holds."""
    have = [x for x in s.words if x.clause == clause]
    return {w.stem for w in want if any(_same(w, x, cross) for x in have)}


def _negation_breaks(c: _Parsed, s: _Parsed, cross: bool) -> bool:
    """True when a word is negated in one and plainly asserted in the other."""
    for w in c.words:
        if not (w.stem or w.negated):
            continue
        hits = [x for x in s.words if (x.stem or x.negated) and _same(w, x, cross)]
        if not hits:
            continue
        if w.negated != any(x.negated for x in hits) and (w.negated or all(x.negated for x in hits)):
            return True
    return False


_PREPOSITIONS = {"from", "by", "to", "with", "of", "for", "de", "par", "a", "avec", "pour", "du", "des"}


def _role_swap(c: _Parsed, s: _Parsed, cross: bool) -> str | None:
    """'The Panthers defeated the Broncos' for 'the Broncos defeated the Panthers': two names around the same verb in
    the opposite order (no passive 'by' to explain it); or a name moved onto another noun ('French force')."""
    cw = c.words
    for k, v in enumerate(cw):
        if not v.stem or v.cap:
            continue
        left = next((x for x in reversed(cw[max(0, k - 3):k]) if x.cap and not x.first), None)
        right = next((x for x in cw[k + 1 : k + 4] if x.cap), None)
        if not left or not right or left.fold == right.fold or "," in c.text[left.end:right.start]:
            continue
        for j, y in enumerate(s.words):
            if not (y.stem and _same(v, y, cross)):
                continue
            after = [x.fold for x in s.words[j + 1 : j + 3]]
            if any(a in _PREPOSITIONS for a in after):
                continue
            before_names = {x.fold for x in s.words[:j] if x.cap}
            after_names = {x.fold for x in s.words[j + 1 :] if x.cap}
            passive = any(x.fold in ("by", "par") for x in cw[k + 1 : cw.index(right)])
            if right.fold in before_names - after_names and left.fold in after_names - before_names and not passive:
                return f"The cited span has “{left.text}” and “{right.text}” the other way round."
    for k, w in enumerate(cw[:-1]):
        nxt = cw[k + 1]
        if not (w.cap and not w.first and nxt.stem and not nxt.cap and c.text[w.end:nxt.start].strip() == ""):
            continue
        if not re.search(r"(ish|ese|an|ian|ch|ais|ois|ien|ienne|aine|ain|que|ic)$", w.fold):
            continue  # only a name that modifies a noun ("Spanish force", "Maltese Commissioner")
        occ = [j for j, x in enumerate(s.words) if j and x.stem == nxt.stem]
        if not occ or any(s.words[j - 1].fold == w.fold for j in occ) or not any(x.fold == w.fold for x in s.words):
            continue
        if all(s.words[j - 1].cap and s.text[s.words[j - 1].end:s.words[j].start].strip() == "" for j in occ):
            return f"In the cited span, “{nxt.text}” goes with “{s.words[occ[0] - 1].text}”, not “{w.text}”."
    return _subject_swap(c, s, cross) or _contrast_swap(c, s, cross)


def _participle_flip(c: _Parsed, s: _Parsed) -> str | None:
    """'developing countries' for 'developed countries': same stem, the other participle, before the same noun."""
    def pairs(p: _Parsed) -> list[tuple[_Word, str]]:
        out = []
        for a, b in zip(p.words, p.words[1:]):
            if a.stem and b.stem and re.search(r"(ing|ed)$", a.fold) and p.text[a.end:b.start].strip() == "":
                out.append((a, b.stem))
        return out
    for a, noun in pairs(c):
        for x, noun2 in pairs(s):
            if a.stem == x.stem and noun == noun2 and a.fold[-3:] != x.fold[-3:] and "ing" in (a.fold[-3:], x.fold[-3:]):
                return f"The cited span says “{x.text}”, not “{a.text}”."
    return None


_CONTRAST = {"while", "whereas", "unlike", "but", "tandis", "contrairement", "alors"}


def _contrast_swap(c: _Parsed, s: _Parsed, cross: bool) -> str | None:
    """'Manufacturing takes place on location' for '… manufacturing involves mass production, while construction takes
    place on location': in a sentence contrasting two things, a predicate said of the other one."""
    if not any(x.fold in _CONTRAST for x in s.words):
        return None
    content = [w for w in c.words if w.stem]
    if len(content) < 2 or c.words.index(content[0]) > 2:
        return None
    subject = content[0]
    predicate = next((w for w in content[1:4] if not (w.fold.endswith("ly") or w.fold.endswith("ment"))), None)
    if predicate is None or not any(_same(subject, x, cross) for x in s.words):
        return None
    for j, y in enumerate(s.words):
        if y.cap or not y.stem or not _same(predicate, y, cross):
            continue
        before = [x for x in s.words[:j] if x.clause == y.clause and x.stem]
        before = [x for x in before if not (x.fold.endswith("ly") or x.fold.endswith("ment"))]
        if not before or re.search(r"[,;:(]", s.text[before[-1].end:y.start]):
            continue
        other = before[-1]
        if not _same(subject, other, cross) and not _same(other, subject, cross):
            return f"In the cited span, “{y.text}” is said of “{other.text}”, not of “{subject.text}”."
    return None


def _subject_swap(c: _Parsed, s: _Parsed, cross: bool) -> str | None:
    """'Scheele is often given priority' for '… but Priestley is often given priority': the span says the predicate of
    another name of the same sentence."""
    names_in_span = {x.fold for x in s.words if x.cap and not x.first}
    cw = c.words
    for k, w in enumerate(cw):
        if not (w.cap and w.fold in names_in_span) or (k + 1 < len(cw) and cw[k + 1].cap):
            continue
        predicate = [x for x in cw[k + 1 : k + 4] if x.stem and not x.cap][:1]
        if not predicate or re.search(r"[,;:(]", c.text[w.end:predicate[0].start]):
            continue
        v = predicate[0]
        subjects = set()
        for j, y in enumerate(s.words):
            if not (y.stem and _same(v, y, cross)):
                continue
            if y.cap:
                continue
            before = s.words[max(0, j - 3):j]
            named = [i for i, x in enumerate(before) if x.cap and not x.first]
            if not named:
                return None  # the predicate is said of something unnamed here: no evidence either way
            between = before[named[-1] + 1 :]
            if re.search(r"[,;:(]", s.text[before[named[-1]].end:y.start]) or any(x.stem or x.fold in _CLAUSE_WORDS for x in between):
                return None
            subjects.add(before[named[-1]].fold)
        if subjects and w.fold not in subjects:
            return f"In the cited span, “{v.text}” is said of “{sorted(subjects)[0]}”, not of “{w.text}”."
    return None


def best_span(claim: str, passage: str, lang: Lang | None = None, passage_lang: Lang | None = None) -> tuple[int, int] | None:
    """(start, end) of the passage sentence that supports claim, the one sharing most words with it; None if none."""
    passage_lang = passage_lang or detect_language(passage)
    best, best_score = None, -1.0
    for a, b in sentence_spans(passage, passage_lang):
        if check(claim, passage[a:b], lang, passage_lang).supported:
            _, _, score = _lexical(claim, passage[a:b], lang or detect_language(claim))
            if score > best_score:
                best, best_score = (a, b), score
    return best


# --- lexical overlap (for ranking and quoting, never a verdict) --------------------------------------------

def key_terms(sentence: str, lang: Lang) -> tuple[set[str], set[str], set[str]]:
    """(numbers, names, content stems) of a sentence."""
    numbers = {n.replace(",", "") for n in _NUMBER.findall(sentence)}
    names = set()
    for m in _NAME.finditer(sentence):
        names.update(w for w in tokenize(m.group(), lang))
    return numbers, names, set(tokenize(sentence, lang))


def support(sentence: str, passage: str, lang: Lang) -> float:
    """Share of the sentence's content stems found in the passage; 0 if a number or a name is missing (lexical only:
    use check() to decide what is shown)."""
    numbers, names, stems = key_terms(sentence, lang)
    if not stems and not numbers:
        return 0.0
    p_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage)}
    p_stems = set(tokenize(passage, lang)) | set(tokenize(passage, "en" if lang == "fr" else "fr"))
    if not numbers <= p_numbers or not names <= p_stems:
        return 0.0
    return len(stems & p_stems) / len(stems) if stems else 1.0


def _lexical(sentence: str, passage: str, lang: Lang) -> tuple[int, int, float]:
    want = set(tokenize(sentence, lang))
    have = set(tokenize(passage, lang))
    return 0, len(passage), (len(want & have) / len(want) if want else 0.0)


def best_quote(sentence: str, passage: str, lang: Lang) -> tuple[int, int, float]:
    """The passage sentence sharing most content stems with sentence: (start, end, overlap)."""
    want = set(tokenize(sentence, lang))
    best = (0, 0, 0.0)
    for a, b in sentence_spans(passage, lang):
        have = set(tokenize(passage[a:b], lang))
        overlap = len(want & have) / len(want) if want else 0.0
        if overlap > best[2]:
            best = (a, b, overlap)
    return best


def contains(haystack: str, needle: str) -> bool:
    """Case- and accent-insensitive containment, spaces normalised."""
    return _norm(needle) in _norm(haystack) if needle.strip() else False


def find(haystack: str, needle: str) -> tuple[int, int] | None:
    """(start, end) of needle in haystack, ignoring case, accents and runs of spaces; None if absent."""
    n = _norm(needle)
    if not n:
        return None
    folded, index = [], []
    for i, ch in enumerate(haystack):
        f = fold(ch)
        if f.isspace():
            if folded and folded[-1] == " ":
                continue
            f = " "
        for c in f:
            folded.append(c)
            index.append(i)
    at = "".join(folded).find(n)
    if at < 0:
        return None
    return index[at], index[at + len(n) - 1] + 1
