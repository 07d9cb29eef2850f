"""Text aimed at a model: prompt-injection detection for chunks and questions.

:func:`find_injections` flags spans of a text that read as instructions to a model rather
than as content: orders to ignore or replace instructions (``override``), chat-format role
and system markers (``role_marker``), tool-call syntax (``tool_call``), markup that hides
text from a human reader (``hidden_html``), invisible and direction-changing characters
(``invisible``), requests to reveal a prompt or secrets (``prompt_leak``) and text that
speaks to an AI reader (``addressed_to_model``). Each flag is a :class:`graph.Tag` of kind
``"injection"`` whose ``type`` names the rule.

The rules are precise rather than broad: ordinary prose ("ignore the noise", "the system
administrator", "acts as a buffer", JSON data) is not flagged; the false-positive rate over
the shared benchmark corpora is measured by the privacy tests. Matching runs on a
normalised copy of the text (invisible characters dropped, full-width and look-alike
letters folded) so ``ign\u200bore previous instructions`` is still an override, while every
tag's offsets index the original text.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable, Sequence

from graph import Tag

__all__ = ["INJECTION_TYPES", "find_injections"]

#: The rules, each a tag ``type``.
INJECTION_TYPES = (
    "override",
    "role_marker",
    "tool_call",
    "hidden_html",
    "invisible",
    "prompt_leak",
    "addressed_to_model",
)

# Characters that render as nothing or change the reading order. Zero-width joiners occur
# in emoji sequences and some scripts, so only runs of them count (see _INVISIBLE_RUN).
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_DROP = frozenset(_ZERO_WIDTH + _BIDI + "\u00ad\u200e\u200f")


def _is_tag_char(ch: str) -> bool:
    return 0xE0000 <= ord(ch) <= 0xE007F


def _is_dropped(ch: str) -> bool:
    return ch in _DROP or _is_tag_char(ch) or 0xE0100 <= ord(ch) <= 0xE01EF


# Cyrillic and Greek letters that look like Latin ones (an attacker's spelling of "ignore").
_LOOKALIKE = str.maketrans(
    "аеорсухіјѕԁһӏАЕОРСХІЈЅВНКМТοαειρτνκχΑΕΙΟΡΤΝΚΧ",
    "aeopcyxijsdhlAEOPCXIJSBHKMToaeiptvkxAEIOPTNKX",
)

_F = re.IGNORECASE

_QUAL = (
    r"(?:all\s+|any\s+|every\s+|each\s+|the\s+|your\s+|of\s+|these\s+|those\s+|my\s+)*"
    r"(?:previous|prior|above|earlier|preceding|foregoing|former|original|initial|old|"
    r"existing|current|system|developer|safety|default|given|other)"
)
_ORDERS = (
    r"(?:instructions?|prompts?|directions?|directives?|guidelines?|rules|commands?|orders|"
    r"context|constraints|guardrails|programming|policies|restrictions|messages?|tasks?)"
)
# Words that point back at the text or guidance given before (stricter than _QUAL, for
# nouns such as "guidance" or "text" that ordinary prose also overrides).
_PRIOR = r"(?:previous|prior|above|earlier|preceding|foregoing|original|initial|former)"
_GUIDANCE = (
    r"(?:guidance|advice|text|content|input|messages?|conversation|training|persona|"
    r"paragraphs?|lines|words|information|statements?|context|setup|programming)"
)
_DROP_VERB = (
    r"(?:ignore|disregard|forget|override|overrule|discard|set\s+aside|put\s+aside|"
    r"pay\s+no\s+(?:attention|heed)\s+to|do\s+not\s+follow|don'?t\s+follow|stop\s+following|"
    r"no\s+longer\s+follow|throw\s+out|dismiss|scrap|abandon|bypass|neglect)"
)
_SAY = (
    r"(?:say|state|claim|answer|respond|reply|report|mention|write|conclude|assert|tell|"
    r"insist|output|include|recommend)"
)
_PERSONA = (
    r"(?:AI|A\.I\.|assistants?|(?:language|AI|chat)\s+models?|LLMs?|chat\s*bots?|bots?|DAN|"
    r"unrestricted|unfiltered|uncensored|jailbroken)\b"
)
_DE_PRIOR = (
    r"(?:vorherigen|vorigen|bisherigen|obigen|früheren|vorangegangenen|ursprünglichen|alten)\s+"
    r"(?:Anweisungen|Instruktionen|Befehle|Vorgaben|Anordnungen|Regeln|Richtlinien)"
)


def _foreign(pattern: str) -> str:
    """A pattern in other scripts, spelled the way :func:`_normalised` spells text (Cyrillic
    letters that look Latin are folded)."""
    return pattern.translate(_LOOKALIKE)


_AI = (
    r"(?:AI|A\.I\.|artificial\s+intelligence|(?:large\s+)?language\s+models?|LLMs?|"
    r"(?:AI\s+)?assistants?|chat\s*bots?|GPT(?:-\d)?|ChatGPT|Claude|Gemini|Copilot|"
    r"Llama|Mistral|Qwen|AI\s+agents?|agents?|bots?|models?)"
)

# Words a rule cannot match without (lower case): a rule whose words are all absent from a
# text is not run on it, which keeps the check cheap on ordinary prose.
_G_DROP = (
    "ignor", "disregard", "forget", "overrid", "overrul", "bypass", "discard", "abandon", "skip",
    "neglect", "drop", "aside", "no attention", "no heed", "t follow", "stop follow",
    "longer follow", "throw out", "dismiss", "scrap",
)  # fmt: skip
_G_NEW = ("instruction", "directive", "order", "task", "prompt")
_G_FROM_NOW = (
    "from now", "from this", "from here", "going forward", "henceforth", "hereafter",
    "starting now", "rest of th",
)  # fmt: skip
_G_PASSIVE = (
    "ignored", "disregarded", "forgotten", "discarded", "overridden", "dropped", "set aside",
    "void", "null", "cancel", "revoked", "obsolete", "superseded", "invalid", "no longer",
)  # fmt: skip
_G_PERSONA = (
    "you are now", "pretend", "imagine", "act as if", "roleplay", "role-play", "role play",
    "role of", "persona of", "identity of",
)  # fmt: skip
_G_FOREIGN = tuple(
    w.translate(_LOOKALIKE)
    for w in (
        "anweisung", "instruktion", "befehl", "vorgabe", "anordnung", "regeln", "richtlinie",
        "bist du", "du bist", "instruction", "consigne", "directive", "règle", "indication",
        "ordres", "tu es", "vous ê", "instruccion", "indicacion", "órdenes", "directric",
        "reglas", "eres ", "istruzion", "indicazion", "direttiv", "regole", "consegne", "sei ",
        "instruç", "orientaç", "ordens", "regras", "você", "инструкци", "указани", "команд",
        "правил", "теперь", "指", "命令", "规则", "提示", "说明", "设定", "要求", "你现在是",
        "从现在",
    )
)  # fmt: skip
_G_LEAK = ("prompt", "instruction", "message", "directive", "configuration")
_G_SECRET = ("key", "password", "credential", "token", "variable")

_RULES: tuple[tuple[str, float, re.Pattern[str], tuple[str, ...]], ...] = (
    # --- override: orders to drop or replace the instructions in force.
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:ignore|disregard|forget|override|overrule|bypass|discard|abandon|skip|"
            r"neglect|drop|set\s+aside|pay\s+no\s+attention\s+to|do\s+not\s+follow|"
            r"don'?t\s+follow|stop\s+following)\s+"
            + _QUAL
            + r"\s+(?:\w+\s+){0,2}?"
            + _ORDERS
            + r"\b",
            _F,
        ),
        _G_DROP,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+)?(?:you\s+(?:were|have\s+been)"
            r"\s+(?:told|given|instructed)|(?:everything|all|anything)\s+(?:above|before|said\s+before|"
            r"(?:you\s+)?(?:were|have\s+been)\s+told))",
            _F,
        ),
        _G_DROP,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"(?:^|(?<=[\n.:;!>\]\)]))\s*(?:\*\*)?(?:new|updated|revised|real|actual|true|important|"
            r"additional|secret|hidden|system|override|priority|urgent|admin)\s+(?:instructions?|"
            r"directives?|orders|task|prompt)(?:\s+(?:for|to)\s+(?:the\s+|any\s+|all\s+)?"
            + _AI
            + r")?(?:\*\*)?\s*:|(?:^|\n)[^\S\n]*#{1,6}[^\S\n]*(?:new|updated|revised|real|actual|true|"
            r"important|additional|secret|hidden|override|priority|urgent|admin)[^\S\n]+"
            r"(?:instructions?|directives?|orders|prompt|system\s+prompt)[^\S\n]*(?=\n|$)",
            _F,
        ),
        _G_NEW,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\byour\s+(?:new|real|actual|true|only|updated)\s+(?:instructions?|task|goal|objective|"
            r"purpose|role|job|directive|mission)\s+(?:is|are|will\s+be|now)\b",
            _F,
        ),
        ("your",),
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\byou\s+are\s+(?:now\s+)?(?:no\s+longer\s+(?:an?\s+)?(?:AI|assistant|bound|restricted|"
            r"required|limited)|(?:now\s+)?(?:DAN|jailbroken|unrestricted|unfiltered|uncensored|"
            r"in\s+(?:developer|god|debug|admin|unrestricted)\s+mode|freed\s+from))\b",
            _F,
        ),
        ("you are",),
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:from\s+now\s+on|henceforth|starting\s+now)\s*,?\s+(?:you\s+(?:will|must|shall|are"
            r"\s+to|should)|always\s+(?:answer|respond|reply|say)|(?:answer|respond|reply)\s+only)\b",
            _F,
        ),
        _G_FROM_NOW,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b"
            + _DROP_VERB
            + r"\s+(?:all\s+|any\s+|of\s+|the\s+|your\s+|these\s+|those\s+)*"
            + _PRIOR
            + r"\s+(?:\w+\s+){0,2}?"
            + _GUIDANCE
            + r"\b",
            _F,
        ),
        _G_DROP,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b" + _DROP_VERB + r"\s+(?:(?:all\s+|every\s+)?your\s+(?:own\s+)?(?:instructions|"
            r"guidance|guidelines|rules|directives|programming|training|prompt|orders)|"
            r"(?:what|everything|anything|all|whatever)\s+(?:that\s+)?you(?:'ve|\s+were|\s+have\s+been"
            r"|\s+had\s+been|\s+got)\s+(?:told|given|instructed|taught|asked|programmed|shown)|"
            r"(?:all\s+of\s+)?the\s+(?:(?:text|words|content|message|lines)\s+(?:above|before\s+"
            r"this|so\s+far)|above\b)"
            r"|(?:everything|anything|all|what(?:ever)?)\s+(?:that\s+)?(?:is\s+|was\s+)?(?:written\s+|"
            r"said\s+|stated\s+)?(?:above|before\s+this|so\s+far|until\s+now|up\s+to\s+(?:now|here)))",
            _F,
        ),
        _G_DROP,
    ),
    (
        "override",
        1.0,
        re.compile(
            # The order in the passive, possibly over a sentence break: "everything you read
            # before this. Should be ignored." / "the previous instructions are void".
            r"\b(?:(?:everything|anything|all|whatever)\s+(?:that\s+)?(?:you\s+(?:read|saw|were\s+"
            r"(?:told|given|shown))|(?:is\s+|was\s+)?(?:written\s+)?above)(?:\s+(?:before|above|"
            r"earlier|until)\s+(?:this|now)(?:\s+(?:point|line|message|sentence))?)?|"
            + _PRIOR
            + r"\s+(?:\w+\s+)?"
            + _ORDERS
            + r")[\s.,;:]{0,4}(?:(?:should|must|is\s+to|"
            r"are\s+to|needs?\s+to|has\s+to)\s+(?:now\s+)?be\s+(?:ignored|disregarded|forgotten|"
            r"discarded|overridden|dropped|set\s+aside)|(?:are|is)\s+(?:now\s+)?(?:void|null|"
            r"cancell?ed|revoked|obsolete|superseded|overridden|invalid|no\s+longer\s+(?:valid|in\s+"
            r"effect|in\s+force)))",
            _F,
        ),
        _G_PASSIVE,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:from\s+(?:now|this\s+point|here|this\s+moment)(?:\s+(?:on(?:wards?)?|forward|"
            r"out))?|going\s+forward|henceforth|hereafter|starting\s+now|for\s+the\s+rest\s+of\s+"
            r"(?:this|the)\s+(?:conversation|chat|session))\s*,?\s+(?:you\s+(?:will|must|shall|"
            r"are\s+to|should|are\s+going\s+to)\s+(?:now\s+)?(?:always\s+|only\s+)?(?:"
            + _SAY
            + r"|act|behave|pretend|ignore|refuse)\b|(?:always\s+|only\s+)?(?:answer|respond|reply)"
            r"\s+(?:only\s+)?(?:with|that|by|in|to\s+(?:every|all|any)|every|all|any|[\"'\u2018\u201c])"
            r"|(?:always\s+|only\s+)?(?:say|state|claim|output|print)\s+(?:only\s+)?(?:that\b|"
            r"[\"'\u2018\u201c])|you\s+are\s+(?:an?|the|my)\b)",
            _F,
        ),
        _G_FROM_NOW,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"(?<!\bto\s)\b(?:respond|answer|reply)\s+(?:only|solely|exclusively|strictly|just)\s+"
            r"(?:with|using|by\s+saying)\b|\b(?:only|always)\s+(?:respond|answer|reply)\s+(?:with|"
            r"by\s+saying)\s+[\"'\u2018\u201c]|\b(?:answer|respond\s+to|reply\s+to)\s+(?:every|all|"
            r"any|each)\s+(?:questions?|quer(?:y|ies)|prompts?|requests?|messages?)\s+(?:with|by\s+"
            r"saying)\b",
            _F,
        ),
        ("respond", "answer", "reply"),
    ),
    (
        "override",
        1.0,
        re.compile(
            # A change of persona or role.
            r"\byou\s+are\s+now\s+(?:(?:called|named|known\s+as|operating\s+(?:in|as|without))\b|"
            r"in\s+\w+\s+mode\b|(?:(?:an?|the|my)\s+)?(?:[\w-]+\s+){0,3}?" + _PERSONA + r")|"
            r"\b(?:pretend|imagine|act\s+as\s+if)\s+(?:that\s+)?you\s+(?:are|were)\s+(?:an?\s+|the\s+)?"
            r"(?:[\w-]+\s+){0,2}?" + _PERSONA + r"|\bpretend\s+to\s+be\s+(?:an?\s+|the\s+)?"
            r"(?:[\w-]+\s+){0,2}?" + _PERSONA + r"|\b(?:roleplay|role-play|role\s+play)\s+as\b|"
            r"\b(?:assume|adopt|take\s+on)\s+(?:the\s+)?(?:role|persona|identity)\s+of\s+(?:an?\s+)?"
            r"(?:[\w-]+\s+){0,2}?" + _PERSONA,
            _F,
        ),
        _G_PERSONA,
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:enable|activate|enter|switch\s+to)\s+(?:developer|god|jailbreak|DAN|unrestricted|"
            r"debug)\s+mode\b",
            _F,
        ),
        ("mode",),
    ),
    (
        "override",
        0.9,
        re.compile(
            # Other languages: "ignore the previous instructions" and "you are now" in German,
            # French, Spanish, Italian, Portuguese, Russian, Chinese and Japanese.
            _foreign(
                r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen|missachte|missachten|verwirf|verwerfen|"
                r"übergehe|übergehen)(?:\s+Sie)?\s+(?:\w+\s+){0,2}?" + _DE_PRIOR + r"|\b(?:beachte|"
                r"befolge|beachten|befolgen)(?:\s+Sie)?\s+(?:\w+\s+){0,2}?"
                + _DE_PRIOR
                + r"\s+nicht\b|"
                r"\b(?:du\s+bist\s+(?:jetzt|nun|ab\s+sofort|ab\s+jetzt|von\s+nun\s+an)|(?:ab\s+jetzt|"
                r"ab\s+sofort|von\s+nun\s+an)\s+bist\s+du)\b|"
                r"\b(?:ignore[zr]?|oublie[zr]?|ne\s+(?:tiens|tenez)\s+pas\s+compte|(?:fais|faites)\s+"
                r"abstraction)\s+(?:de\s+|des\s+|d'|du\s+)?(?:toutes\s+|tous\s+)?(?:les\s+|tes\s+|vos\s+|"
                r"ces\s+)?(?:instructions|consignes|directives|règles|indications|ordres)\s+"
                r"(?:précédentes|antérieures|ci-dessus|d'avant|initiales|reçues)|\b(?:tu\s+es|vous\s+"
                r"êtes)\s+(?:maintenant|désormais|dorénavant)\s+(?:un|une|le|la|mon|ma|votre|ton|ta)\b|"
                r"\b(?:ignora|ignore|ignoren|olvida|olvide|olviden|olvídate\s+de|descarta|descarte|"
                r"omite|no\s+sigas|no\s+siga|haz\s+caso\s+omiso\s+(?:a|de))\s+(?:de\s+)?(?:todas\s+|"
                r"todos\s+)?(?:las\s+|los\s+|tus\s+|sus\s+)?(?:instrucciones|indicaciones|órdenes|"
                r"directrices|reglas|directivas)\s+(?:anteriores|previas|de\s+arriba|precedentes|"
                r"iniciales|originales)|\b(?:ahora|a\s+partir\s+de\s+ahora|desde\s+ahora)\s+eres\s+"
                r"(?:un|una|el|la|mi)\b|"
                r"\b(?:ignora|ignorate|dimentica|dimenticate|trascura|non\s+seguire|non\s+seguite)\s+"
                r"(?:tutte\s+)?(?:le\s+)?(?:istruzioni|indicazioni|direttive|regole|consegne)\s+"
                r"(?:precedenti|sopra|di\s+prima|iniziali|originali|ricevute)|\b(?:ora|adesso|da\s+ora"
                r"\s+in\s+poi)\s+sei\s+(?:un|una|uno|il|la|mio|mia)\b|"
                r"\b(?:ignore|ignora|esqueça|esqueca|esquece|desconsidere)\s+(?:todas\s+)?(?:as\s+)?"
                r"(?:instruções|instrucoes|orientações|ordens|regras)\s+(?:anteriores|acima|prévias|"
                r"previas|iniciais)|\bagora\s+você\s+é\b|"
                r"\b(?:игнорируй(?:те)?|проигнорируй(?:те)?|забудь(?:те)?|не\s+обращай(?:те)?\s+"
                r"внимания\s+на|отбрось(?:те)?|не\s+следуй(?:те)?)\s+(?:\w+\s+){0,2}?(?:предыдущие|"
                r"прежние|прошлые|вышеуказанные|предшествующие|изначальные|все)\s+(?:\w+\s+)?"
                r"(?:инструкции|указания|команды|правила)|\b(?:теперь\s+ты|ты\s+теперь)\s+\w|"
                r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|不理会|不要遵守|不要遵循|放弃)[^。！？\n]{0,8}?"
                r"(?:之前|以前|上面|上述|先前|前面|此前|原来|原有|原始|所有|全部|一切)[^。！？\n]{0,6}?"
                r"(?:指令|指示|命令|规则|提示|说明|设定|要求)|(?:你现在是|从现在起你是|从现在开始你是)|"
                r"(?:以前|前|上記|これまで)の(?:すべての|全ての)?(?:指示|命令|指令)を(?:すべて|全て)?"
                r"(?:無視|忘れ)"
            ),
            _F,
        ),
        _G_FOREIGN,
    ),
    # --- role_marker: chat-template tokens, role headers and prompt-section tags.
    (
        "role_marker",
        1.0,
        re.compile(
            r"<\|\s*(?:im_start|im_end|im_sep|system|user|assistant|developer|tool|ipython|endoftext|"
            r"end_of_text|begin_of_text|eot_id|eom_id|start_header_id|end_header_id|python_tag|"
            r"end|fim_\w{1,10}|channel|message|return|call|start|constrain)\s*\|>",
            _F,
        ),
        (),
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"\[/?INST\]|<<\s*/?SYS\s*>>|\[/?SYSTEM_PROMPT\]|\[/?AVAILABLE_TOOLS\]|"
            r"<start_of_turn>|<end_of_turn>|<\|(?:begin|end)\u2581of\u2581sentence\|>|<\|(?:User|Assistant)\|>"
        ),
        (),
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"</?\s*(?:system|system[_-]?prompt|instructions?|evidence|notes|text|question|claim|"
            r"user|assistant|"
            r"developer|human|prompt|context|im_start|im_end|tool_result|tool_response|"
            r"function_results)\s*>",
            _F,
        ),
        (),
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"(?:^|\n)[^\S\n]*(?:\*\*)?(?:System|SYSTEM|Assistant|ASSISTANT|System\s+prompt|"
            r"SYSTEM\s+PROMPT)(?:\*\*)?[^\S\n]*:(?:\*\*)?(?=[^\S\n]*\S)",
        ),
        (),
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"(?:^|\n)[^\S\n]*#{2,4}[^\S\n]*(?:(?:system|assistant|instruction|instructions|"
            r"response|input|human|user|system\s+prompt)[^\S\n]*:|(?:system|assistant|"
            r"instruction|instructions|response|system\s+prompt)[^\S\n]*(?=\n|$))",
            _F,
        ),
        (),
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"(?<=[.!?])[^\S\n]+(?:SYSTEM|System|ASSISTANT|Assistant)(?:[^\S\n]+(?:PROMPT|prompt))?"
            r"[^\S\n]*:(?=[^\S\n]*\S)"
        ),
        (),
    ),
    (
        "role_marker",
        1.0,
        re.compile(r'"role"\s*:\s*"(?:system|assistant|developer|tool|user)"', _F),
        (),
    ),
    # --- tool_call: function-call JSON, tool tags of several formats.
    (
        "tool_call",
        1.0,
        re.compile(
            r"</?\s*(?:tool_call|tool_calls|tool_use|tool_code|function_call|function_calls|"
            r"invoke|antml:\w{1,30}|execute|tool|function)\b(?:\s[^<>]{0,200})?>|<function=[\w.\-]{1,80}>|"
            r"\[TOOL_CALLS\]|\[TOOL_RESULTS\]|<\s*(?:call|action|command|tool_request|use_tool|"
            r"run_tool)\s+(?:name|tool|function)\s*=\s*[\"']?[\w.\-]{1,80}[^<>]{0,200}>",
            _F,
        ),
        (),
    ),
    (
        "tool_call",
        1.0,
        re.compile(
            r'"(?:name|function|tool|tool_name|recipient_name)"\s*:\s*"[\w.\-]{1,80}"\s*,\s*'
            r'"(?:arguments|parameters|args|input|kwargs)"\s*:\s*[{"]',
            _F,
        ),
        (),
    ),
    (
        "tool_call",
        1.0,
        re.compile(
            r'"(?:function_call|tool_calls|tool_use|tool_call)"\s*:\s*[\[{]',
            _F,
        ),
        (),
    ),
    (
        "tool_call",
        0.9,
        re.compile(
            r"\b(?:call|invoke|use|run|execute|trigger)\s+the\s+[`'\"]?[a-z]+(?:_[a-z]+)+[`'\"]?"
            r"\s+(?:tool|function|action|endpoint)\b",
            _F,
        ),
        ("tool", "function", "action", "endpoint"),
    ),
    # --- hidden_html: markup that hides its text from a human reader.
    (
        "hidden_html",
        1.0,
        re.compile(
            r"\bstyle\s*=\s*[\"'][^\"'<>]{0,200}?(?:display\s*:\s*none|visibility\s*:\s*hidden|"
            r"font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:[;\"'!]|$)|"
            r"opacity\s*:\s*0(?:\.0+)?\s*(?:[;\"'!]|$)|color\s*:\s*transparent|"
            r"(?:max-)?(?:height|width)\s*:\s*0(?:px)?\s*[;\"']|"
            r"(?:left|top|text-indent)\s*:\s*-\d{3,})",
            _F,
        ),
        ("style",),
    ),
    (
        "hidden_html",
        1.0,
        re.compile(
            r"<\s*[a-z][a-z0-9]{0,15}\b[^<>]{0,200}?\s(?:hidden(?=[\s/>=])|aria-hidden\s*=\s*"
            r"[\"']?true)[^<>]{0,200}>",
            _F,
        ),
        (),
    ),
    # --- prompt_leak: requests for the prompt, the instructions or secrets.
    (
        "prompt_leak",
        1.0,
        re.compile(
            r"\b(?:reveal|print|show|repeat|output|display|tell|give|write\s+out|dump|leak|disclose|"
            r"share|recite|spell\s+out|paste|echo|return|send|copy)\s+(?:me\s+|us\s+)?(?:\w+\s+){0,3}?"
            r"(?:system\s+prompts?|(?:initial|original|hidden|secret|system|developer|internal|"
            r"previous|above|full|complete|exact)\s+(?:instructions|prompts?|messages?|directives|"
            r"configuration)|instructions\s+you\s+(?:were|have\s+been)\s+given|(?:your|the)\s+"
            r"prompt\s+(?:above|verbatim))\b",
            _F,
        ),
        _G_LEAK,
    ),
    (
        "prompt_leak",
        1.0,
        re.compile(
            r"\bwhat\s+(?:is|are|were)\s+your\s+(?:\w+\s+)?(?:system\s+prompt|instructions|"
            r"directives|initial\s+prompt)\b",
            _F,
        ),
        ("your",),
    ),
    (
        "prompt_leak",
        1.0,
        re.compile(
            r"\brepeat\s+(?:back\s+)?(?:all\s+|the\s+)?(?:words|text|everything|content|lines?)\s+"
            r"(?:above|before\s+this|preceding)|\b(?:everything|all\s+the\s+text|the\s+text)\s+"
            r"(?:above|before)\s+this\s+(?:line|message|point)\b",
            _F,
        ),
        ("repeat", "above", "before this"),
    ),
    (
        "prompt_leak",
        0.9,
        re.compile(
            r"\b(?:send|post|upload|forward|exfiltrate|include|append|print|reveal|output|leak)\s+"
            r"(?:\w+\s+){0,4}?(?:api[\s_-]?keys?|passwords?|credentials|secret\s+keys?|access\s+"
            r"tokens?|session\s+tokens?|private\s+keys?|env(?:ironment)?\s+variables)\b[^.\n]{0,80}?"
            r"\b(?:to|in|into)\s+(?:https?://|the\s+(?:answer|response|reply|url|link)|your\s+"
            r"(?:answer|response|reply))",
            _F,
        ),
        _G_SECRET,
    ),
    (
        "prompt_leak",
        1.0,
        re.compile(
            r"!\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]{1,300}[?&][\w-]{1,40}=\{[^)\s]{0,100}\)"
        ),
        (),
    ),
    # --- addressed_to_model: text that speaks to an AI reader.
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:if|when|since|because)\s+you\s+are\s+(?:an?\s+|the\s+)?"
            + _AI
            + r"\s*(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|[,.:;!]|and\b|"
            r"that\b|who\b)",
            _F,
        ),
        ("you are",),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:note|message|instructions?|attention|reminder|warning|hey|hello|hi|dear|psst|"
            r"P\.?S\.?)\s*(?:to|for)?\s*(?:the\s+|any\s+|all\s+|an?\s+)?" + _AI + r"\b\s*[:,!-]",
            _F,
        ),
        (),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:any|the|an?|all|dear)\s+" + _AI + r"\s+(?:that\s+is\s+|who\s+is\s+)?"
            r"(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|ingesting|crawling|"
            r"answering\s+questions\s+(?:about|from))\s+(?:this|these|the\s+following)\b",
            _F,
        ),
        (),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\bas\s+an?\s+(?:AI|AI\s+assistant|language\s+model|LLM|assistant)\b[^.\n]{0,40}?"
            r"\byou\s+(?:must|should|will|shall|are\s+(?:required|instructed|expected))\b",
            _F,
        ),
        ("as a",),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\bin\s+your\s+(?:final\s+|next\s+)?(?:answer|response|reply|summary|output)s?\s*,?\s+"
            r"(?:you\s+(?:must|should|will)\s+)?(?:always\s+|also\s+|only\s+)?(?:say|mention|include|"
            r"state|recommend|add|write|claim|tell|insist|respond|cite|link|append|praise)\b",
            _F,
        ),
        ("your",),
    ),
    (
        "addressed_to_model",
        0.9,
        re.compile(
            r"\bwhen\s+(?:you\s+are\s+)?asked\s+about\s+[^,.\n]{1,80},\s*(?:you\s+(?:must|should)\s+)?"
            r"(?:always\s+)?(?:answer|respond|reply|say|state|claim)\b",
            _F,
        ),
        ("asked about",),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:AI|assistant|LLM|chatbot|model|ChatGPT|GPT(?:-\d)?|Claude|Gemini|Copilot|Llama|"
            r"Qwen|Mistral)\s*[,:]\s*(?:please\s+)?(?:ignore|answer|respond|say|"
            r"reply|output|tell|include|append|mention|recommend|state|do\s+not|don'?t|never|"
            r"always|you\s+(?:must|should|will))\b",
            _F,
        ),
        (),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:whoever|anyone|anybody|whatever(?:\s+(?:system|tool|model|program))?)\s+(?:who\s+|"
            r"that\s+)?(?:is\s+)?(?:reads?|reading|summari[sz]es|summari[sz]ing|process(?:es|ing)|"
            r"answers|answering|(?:writes|generates|produces)\s+(?:the|an|your)\s+(?:answer|summary|"
            r"response|reply))\b[^.\n]{0,40}?(?::\s*|,\s*|\s+)(?:you\s+)?(?:must|should|shall|is\s+to|"
            r"are\s+to|has\s+to|needs?\s+to)\s+(?:now\s+)?(?:always\s+)?(?:" + _SAY + r"|ignore|"
            r"disregard)\b",
            _F,
        ),
        ("whoever", "anyone", "anybody", "whatever"),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:when|while|whenever|before)\s+(?:you\s+(?:are\s+)?)?(?:answering|responding|"
            r"replying|summari[sz]ing|answer|respond|reply|summari[sz]e)(?:\s+(?:to\s+)?(?:questions?|"
            r"quer(?:y|ies)|this|these|the\s+(?:question|user|query|document|text)|any\s+\w+|about"
            r"\s+[^,.\n]{1,60}))?\s*,?\s+(?:(?:(?:you\s+(?:must|should|will|shall)|always|also|only|"
            r"never|do\s+not|don'?t|be\s+sure\s+to|make\s+sure\s+to)\s+)+" + _SAY + r"|(?:claim|"
            r"insist|pretend|assert)\b|(?:say|state)\s+that)\b",
            _F,
        ),
        ("answer", "respond", "repl", "summari"),
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:act|behave|respond|answer)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?"
            r"(?:unrestricted|unfiltered|jailbroken|uncensored|DAN\b|evil)",
            _F,
        ),
        (" as ",),
    ),
)

# Runs of invisible characters; a single tag character or bidi override is enough.
_INVISIBLE_RUN = re.compile(
    "[\U000e0000-\U000e007f]+|[\u202a-\u202e\u2066-\u2069]+|"
    "[\U000e0100-\U000e01ef]{2,}|[\u2061-\u2064]+|"
    "[" + _ZERO_WIDTH + "\u00ad]{2,}|"
    r"(?<=[A-Za-z])[\u200b\u2060\ufeff](?=[A-Za-z])"
)


#: The rules also run on the folded copy (see :func:`_folded`): those about wording.
_WORDING = frozenset({"override", "prompt_leak", "addressed_to_model"})

# Markup and escapes spelling a bracket: "&lt;system&gt;", "\u003c/evidence\u003e".
_BRACKETS = {"lt": "<", "gt": ">", "60": "<", "62": ">", "3c": "<", "3e": ">"}
_ENTITY = re.compile(r"&(?:lt|gt|#0*6[02]|#x0*3[ce]);|\\u003[ce]|\\x3[ce]", _F)
# Words written with digits for letters ("1gn0re", "prev1ous"), letters spaced or dotted
# out ("i g n o r e"), and words broken by a hyphen ("in-structions").
_LEET_WORD = re.compile(r"(?<![\w@$])(?:[A-Za-z]+[013457@$]|[013457@$]+[A-Za-z])[\w@$]*")
_LEET = str.maketrans("013457@$", "oieastas")
_SPACED = re.compile(
    r"(?<![^\s\"'(\[])[A-Za-z](?P<sep>[ ._*\-])[A-Za-z](?:(?P=sep)[A-Za-z])+(?![\w])"
)
_BROKEN = re.compile(r"(?<=[A-Za-z])-(?=[a-z])")

# HTML comments that carry orders to a model.
_COMMENT = re.compile(r"<!--(.{1,800}?)-->", re.DOTALL)
_COMMENT_READER = re.compile(
    r"\b(?:assistant|AI|LLM|chat\s*bot|bot|language\s+model|model|agent|summari[sz]\w*|"
    r"answering|responding|system|reader)\b",
    _F,
)
_COMMENT_ORDER = re.compile(
    r"\b(?:" + _SAY + r"|says|ignore|disregard|forget|pretend|must|always|never)\b", _F
)

# Base64 runs long enough to carry a sentence.
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")

_View = tuple[str, "Sequence[int]", "Sequence[int]"]


def _rewrite(view: _View, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> _View:
    """``view`` with each match of ``pattern`` replaced, keeping the original offsets: a
    replacement of the same length maps character by character, any other maps every
    character to the whole match."""
    text, starts, ends = view
    parts: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    pos = 0
    for m in pattern.finditer(text):
        a, b = m.span()
        new = repl(m)
        parts.append(text[pos:a])
        new_starts += starts[pos:a]
        new_ends += ends[pos:a]
        parts.append(new)
        if len(new) == b - a:
            new_starts += starts[a:b]
            new_ends += ends[a:b]
        else:
            new_starts += [starts[a]] * len(new)
            new_ends += [ends[b - 1]] * len(new)
        pos = b
    if not pos:
        return view
    parts.append(text[pos:])
    new_starts += starts[pos:]
    new_ends += ends[pos:]
    return "".join(parts), new_starts, new_ends


def _normalised(text: str) -> _View:
    """``text`` with invisible characters dropped, look-alike letters folded and escaped
    brackets decoded, with the start and end in ``text`` of each character of the result."""
    if text.isascii() and "&" not in text and "\\" not in text:
        return text, range(len(text)), range(1, len(text) + 1)
    chars: list[str] = []
    where: list[int] = []
    plain = text.isascii()
    for i, ch in enumerate(text):
        if not plain:
            if _is_dropped(ch):
                continue
            if not ch.isascii():
                folded = unicodedata.normalize("NFKC", ch)
                chars.append(folded if len(folded) == 1 else ch)
                where.append(i)
                continue
        chars.append(ch)
        where.append(i)
    view: _View = ("".join(chars).translate(_LOOKALIKE), where, [i + 1 for i in where])
    return _rewrite(view, _ENTITY, lambda m: _BRACKETS[m.group().lower().rstrip(";")[-2:]])


def _folded(view: _View) -> _View | None:
    """The normalised text with leet digits read as letters, spaced-out letters joined and
    hyphen-broken words mended; ``None`` when there is nothing of the kind."""
    folded = _rewrite(view, _LEET_WORD, lambda m: m.group().translate(_LEET))
    folded = _rewrite(folded, _SPACED, lambda m: m.group().replace(m.group("sep"), ""))
    folded = _rewrite(folded, _BROKEN, lambda m: "")
    return None if folded is view else folded


def _decoded(blob: str) -> str | None:
    """The text a base64 run spells, if it is printable text."""
    core = blob.rstrip("=")
    if len(core) % 4 == 1:
        return None
    try:
        text = base64.b64decode(core + "=" * (-len(core) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return text if text.isprintable() or all(c.isprintable() or c.isspace() for c in text) else None


def _spans(text: str, nested: bool) -> dict[str, list[tuple[int, int, float]]]:
    """Every rule's matches in ``text`` as (start, end, score), by rule."""
    found: dict[str, list[tuple[int, int, float]]] = {}
    for m in _INVISIBLE_RUN.finditer(text):
        found.setdefault("invisible", []).append((m.start(), m.end(), 1.0))
    view = _normalised(text)
    views = [(view, False)]
    folded = _folded(view)
    if folded is not None:
        views.append((folded, True))
    for (norm, starts, ends), wording_only in views:
        lower = norm.lower()
        for kind, score, pattern, needles in _RULES:
            if wording_only and kind not in _WORDING:
                continue
            if needles and not any(n in lower for n in needles):
                continue
            for m in pattern.finditer(norm):
                start, end = m.start(), m.end()
                while start < end and norm[start].isspace():
                    start += 1  # anchors such as (?:^|\n) may take leading whitespace
                if start < end:
                    found.setdefault(kind, []).append((starts[start], ends[end - 1], score))
    norm, starts, ends = view
    if "<!--" in norm:
        for m in _COMMENT.finditer(norm):
            body = m.group(1)
            if _COMMENT_READER.search(body) and _COMMENT_ORDER.search(body):
                found.setdefault("hidden_html", []).append(
                    (starts[m.start()], ends[m.end() - 1], 1.0)
                )
    if not nested:
        for m in _BASE64.finditer(text):
            decoded = _decoded(m.group())
            if decoded:
                for kind, inner in _spans(decoded, nested=True).items():
                    found.setdefault(kind, []).append(
                        (m.start(), m.end(), max(s for _, _, s in inner))
                    )
    return found


def find_injections(text: str, offset: int = 0) -> list[Tag]:
    """Spans of ``text`` aimed at a model, as ``injection`` tags in ``offset + position``.

    Overlapping spans of the same rule are merged; the result is ordered by start.
    """
    if not text:
        return []
    tags: list[Tag] = []
    for kind, spans in _spans(text, nested=False).items():
        spans.sort()
        merged: list[list[float]] = []
        for start, end, score in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
                merged[-1][2] = max(merged[-1][2], score)
            else:
                merged.append([start, end, score])
        tags += [
            Tag(kind="injection", type=kind, start=offset + int(s), end=offset + int(e), score=sc)
            for s, e, sc in merged
        ]
    return sorted(tags, key=lambda t: (t.start, t.end, t.type))
