"""The rules of :mod:`extractors.injection`: one regular expression per way of writing text
aimed at a model, each with the words it cannot match without.

Rules about wording (``override``, ``prompt_leak``, ``addressed_to_model``) are written
against the normalised text of :func:`extractors.injection.find_injections`: look-alike
letters already folded (so patterns in other scripts are spelled through
:data:`LOOKALIKE` too).
"""

from __future__ import annotations

import re

__all__ = ["COMMENT_ORDER", "COMMENT_READER", "LOOKALIKE", "RULES"]

# Cyrillic and Greek letters that look like Latin ones (an attacker's spelling of "ignore").
LOOKALIKE = str.maketrans(
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
SAY = (
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
    return pattern.translate(LOOKALIKE)


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
    w.translate(LOOKALIKE)
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

RULES: tuple[tuple[str, float, re.Pattern[str], tuple[str, ...]], ...] = (
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
            + r")?(?:\*\*)?\s*:|(?:^|\n)[^\S\n]*#{1,6}[^\S\n]*(?:new|updated|revised|real|actual|"
            r"true|important|additional|secret|hidden|override|priority|urgent|admin)[^\S\n]+"
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
            r"(?:what|everything|anything|all|whatever)\s+(?:that\s+)?you(?:'ve\s+been|'d\s+been|\s+were|\s+have\s+been"
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
            r"out)){0,2}|going\s+forward|henceforth|hereafter|starting\s+now|for\s+the\s+rest\s+of\s+"
            r"(?:this|the)\s+(?:conversation|chat|session))\s*,?\s+(?:you\s+(?:will|must|shall|"
            r"are\s+to|should|are\s+going\s+to)\s+(?:now\s+)?(?:always\s+|only\s+)?(?:"
            + SAY
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
                r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|不理会|不要遵守|不要遵循|放弃)[^\u3002\uff01\uff1f\n]{0,8}?"
                r"(?:之前|以前|上面|上述|先前|前面|此前|原来|原有|原始|所有|全部|一切)[^\u3002\uff01\uff1f\n]{0,6}?"
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
            r"are\s+to|has\s+to|needs?\s+to)\s+(?:now\s+)?(?:always\s+)?(?:" + SAY + r"|ignore|"
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
            r"quer(?:y|ies)|this|these|the\s+(?:question|user|query|document|text)|any\s+\w+))?"
            r"(?:\s+(?:about|on|regarding)\s+[^,.\n]{1,60})?\s*,?\s+(?:(?:(?:you\s+(?:must|should|will|shall)|always|also|only|"
            r"never|do\s+not|don'?t|be\s+sure\s+to|make\s+sure\s+to)\s+)+" + SAY + r"|(?:claim|"
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

# HTML comments that carry orders to a model: a reader and an order in one comment.
COMMENT_READER = re.compile(
    r"\b(?:assistant|AI|LLM|chat\s*bot|bot|language\s+model|model|agent|summari[sz]\w*|"
    r"answering|responding|system|reader)\b",
    _F,
)
COMMENT_ORDER = re.compile(
    r"\b(?:" + SAY + r"|says|ignore|disregard|forget|pretend|must|always|never)\b", _F
)
