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

import re
import unicodedata

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
_AI = (
    r"(?:AI|A\.I\.|artificial\s+intelligence|(?:large\s+)?language\s+models?|LLMs?|"
    r"(?:AI\s+)?assistants?|chat\s*bots?|GPT(?:-\d)?|ChatGPT|Claude|Gemini|Copilot|"
    r"Llama|Mistral|Qwen|AI\s+agents?|agents?|bots?|models?)"
)

_RULES: tuple[tuple[str, float, re.Pattern[str]], ...] = (
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
    ),
    (
        "override",
        1.0,
        re.compile(
            r"(?:^|(?<=[\n.:;!>\]\)]))\s*(?:\*\*)?(?:new|updated|revised|real|actual|true|important|"
            r"additional|secret|hidden|system)\s+(?:instructions?|directives?|orders|task|prompt)"
            r"(?:\*\*)?\s*:",
            _F,
        ),
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\byour\s+(?:new|real|actual|true|only|updated)\s+(?:instructions?|task|goal|objective|"
            r"purpose|role|job|directive|mission)\s+(?:is|are|will\s+be|now)\b",
            _F,
        ),
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
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:from\s+now\s+on|henceforth|starting\s+now)\s*,?\s+(?:you\s+(?:will|must|shall|are"
            r"\s+to|should)|always\s+(?:answer|respond|reply|say)|(?:answer|respond|reply)\s+only)\b",
            _F,
        ),
    ),
    (
        "override",
        1.0,
        re.compile(
            r"\b(?:enable|activate|enter|switch\s+to)\s+(?:developer|god|jailbreak|DAN|unrestricted|"
            r"debug)\s+mode\b",
            _F,
        ),
    ),
    (
        "override",
        0.9,
        re.compile(
            r"\b(?:ignoriere|ignorieren\s+Sie|vergiss)\s+(?:alle\s+)?(?:vorherigen|bisherigen|obigen)"
            r"\s+(?:Anweisungen|Instruktionen|Befehle)|\bignor(?:e|ez)\s+(?:toutes\s+)?(?:les\s+)?"
            r"instructions\s+(?:précédentes|ci-dessus|antérieures)|\bignora\s+(?:todas\s+)?"
            r"(?:las\s+)?instrucciones\s+(?:anteriores|previas)",
            _F,
        ),
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
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"\[/?INST\]|<<\s*/?SYS\s*>>|\[/?SYSTEM_PROMPT\]|\[/?AVAILABLE_TOOLS\]|"
            r"<start_of_turn>|<end_of_turn>|<\|(?:begin|end)\u2581of\u2581sentence\|>|<\|(?:User|Assistant)\|>"
        ),
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
    ),
    (
        "role_marker",
        1.0,
        re.compile(
            r"(?:^|\n)[^\S\n]*(?:\*\*)?(?:System|SYSTEM|Assistant|ASSISTANT|System\s+prompt|"
            r"SYSTEM\s+PROMPT)(?:\*\*)?[^\S\n]*:(?:\*\*)?(?=[^\S\n]*\S)",
        ),
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
    ),
    (
        "role_marker",
        1.0,
        re.compile(r'"role"\s*:\s*"(?:system|assistant|developer|tool|user)"', _F),
    ),
    # --- tool_call: function-call JSON, tool tags of several formats.
    (
        "tool_call",
        1.0,
        re.compile(
            r"</?\s*(?:tool_call|tool_calls|tool_use|tool_code|function_call|function_calls|"
            r"invoke|antml:\w{1,30}|execute|tool|function)\b(?:\s[^<>]{0,200})?>|<function=[\w.\-]{1,80}>|"
            r"\[TOOL_CALLS\]|\[TOOL_RESULTS\]",
            _F,
        ),
    ),
    (
        "tool_call",
        1.0,
        re.compile(
            r'"(?:name|function|tool|tool_name|recipient_name)"\s*:\s*"[\w.\-]{1,80}"\s*,\s*'
            r'"(?:arguments|parameters|args|input|kwargs)"\s*:\s*[{"]',
            _F,
        ),
    ),
    (
        "tool_call",
        1.0,
        re.compile(
            r'"(?:function_call|tool_calls|tool_use|tool_call)"\s*:\s*[\[{]',
            _F,
        ),
    ),
    (
        "tool_call",
        0.9,
        re.compile(
            r"\b(?:call|invoke|use|run|execute|trigger)\s+the\s+[`'\"]?[a-z]+(?:_[a-z]+)+[`'\"]?"
            r"\s+(?:tool|function|action|endpoint)\b",
            _F,
        ),
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
    ),
    (
        "hidden_html",
        1.0,
        re.compile(
            r"<\s*[a-z][a-z0-9]{0,15}\b[^<>]{0,200}?\s(?:hidden(?=[\s/>=])|aria-hidden\s*=\s*"
            r"[\"']?true)[^<>]{0,200}>",
            _F,
        ),
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
    ),
    (
        "prompt_leak",
        1.0,
        re.compile(
            r"\bwhat\s+(?:is|are|were)\s+your\s+(?:\w+\s+)?(?:system\s+prompt|instructions|"
            r"directives|initial\s+prompt)\b",
            _F,
        ),
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
    ),
    (
        "prompt_leak",
        1.0,
        re.compile(
            r"!\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]{1,300}[?&][\w-]{1,40}=\{[^)\s]{0,100}\)"
        ),
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
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:note|message|instructions?|attention|reminder|warning|hey|hello|hi|dear|psst|"
            r"P\.?S\.?)\s*(?:to|for)?\s*(?:the\s+|any\s+|all\s+|an?\s+)?" + _AI + r"\b\s*[:,!-]",
            _F,
        ),
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
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\bas\s+an?\s+(?:AI|AI\s+assistant|language\s+model|LLM|assistant)\b[^.\n]{0,40}?"
            r"\byou\s+(?:must|should|will|shall|are\s+(?:required|instructed|expected))\b",
            _F,
        ),
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
    ),
    (
        "addressed_to_model",
        0.9,
        re.compile(
            r"\bwhen\s+(?:you\s+are\s+)?asked\s+about\s+[^,.\n]{1,80},\s*(?:you\s+(?:must|should)\s+)?"
            r"(?:always\s+)?(?:answer|respond|reply|say|state|claim)\b",
            _F,
        ),
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
    ),
    (
        "addressed_to_model",
        1.0,
        re.compile(
            r"\b(?:act|behave|respond|answer)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?"
            r"(?:unrestricted|unfiltered|jailbroken|uncensored|DAN\b|evil)",
            _F,
        ),
    ),
)

# Runs of invisible characters; a single tag character or bidi override is enough.
_INVISIBLE_RUN = re.compile(
    "[\U000e0000-\U000e007f]+|[\u202a-\u202e\u2066-\u2069]+|"
    "[\U000e0100-\U000e01ef]{2,}|[\u2061-\u2064]+|"
    "[" + _ZERO_WIDTH + "\u00ad]{2,}|"
    r"(?<=[A-Za-z])[\u200b\u2060\ufeff](?=[A-Za-z])"
)


def _normalised(text: str) -> tuple[str, list[int]]:
    """``text`` with invisible characters dropped and look-alike letters folded, and the
    offset in ``text`` of each character of the result (plus one past the end)."""
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
    where.append(len(text))
    return "".join(chars).translate(_LOOKALIKE), where


def find_injections(text: str, offset: int = 0) -> list[Tag]:
    """Spans of ``text`` aimed at a model, as ``injection`` tags in ``offset + position``.

    Overlapping spans of the same rule are merged; the result is ordered by start.
    """
    if not text:
        return []
    found: dict[str, list[tuple[int, int, float]]] = {}
    for m in _INVISIBLE_RUN.finditer(text):
        found.setdefault("invisible", []).append((m.start(), m.end(), 1.0))
    norm, where = _normalised(text)
    for kind, score, pattern in _RULES:
        for m in pattern.finditer(norm):
            start, end = m.start(), m.end()
            while start < end and norm[start].isspace():
                start += 1  # anchors such as (?:^|\n) may take leading whitespace
            if start < end:
                found.setdefault(kind, []).append((where[start], where[end - 1] + 1, score))
    tags: list[Tag] = []
    for kind, spans in found.items():
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
