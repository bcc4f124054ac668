#!/usr/bin/env python3
"""Renders chat templates with transformers, the reference for unmask/chat.

Reads the real chat templates in tests/data/chat/templates/ (see
tests/data/chat/README.md for where each came from), writes the small
hand-written templates that check the Jinja subset construct by construct to
tests/data/chat/templates/constructs/, renders every template for a set of
conversations through `PreTrainedTokenizerFast.apply_chat_template(...,
tokenize=False)` and writes tests/data/chat/goldens.json. Also writes
tests/data/chat/rejections.json: templates unmask must refuse at parse time,
with the line:column and construct its message must name (syntax errors are
checked to be errors in Jinja2 too).

Deterministic: rerunning reproduces the files byte for byte (no clock: the
strftime_now case is not rendered here).

    /tmp/venv-fam/bin/python tools/make_chat_goldens.py
(transformers 4.57.1, tokenizers 0.22.1, jinja2 3.1.6; no network needed.)
"""

import json
import os
import sys

import jinja2
import transformers
from transformers import PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "chat")
TEMPLATES = os.path.join(DATA, "templates")
CONSTRUCTS = os.path.join(TEMPLATES, "constructs")
TOKENIZER_FILE = os.path.join(ROOT, "tests", "data", "tokenizer", "tokenizer.json")

# The real templates and their tokenizer's bos / eos (None: the tokenizer has none).
MODELS = [
    ("llada_8b_instruct.jinja", "<|startoftext|>", "<|endoftext|>"),
    ("dream_v0_instruct_7b.jinja", "<|beginoftext|>", "<|endoftext|>"),
    ("fast_dllm_v2_7b.jinja", None, "<|im_end|>"),
    ("sdar_4b_chat.jinja", None, "<|endoftext|>"),
]


def conversations():
    """(name, messages, extra) for the real templates."""
    u = lambda c: {"role": "user", "content": c}
    a = lambda c: {"role": "assistant", "content": c}
    s = lambda c: {"role": "system", "content": c}
    return [
        ("single_user", [u("Hello!")], {}),
        ("system_user", [s("You are a terse assistant."), u("What is 2+2?")], {}),
        ("multi_turn", [u("Hi"), a("Hello! How can I help?"), u("Tell me a joke.")], {}),
        ("assistant_last", [s("Be brief."), u("Name a colour."), a("Blue.")], {}),
        ("whitespace", [u("  \n  padded question \t\n\n"), a("\n answer with spaces  \n"), u("\tnext\n")], {}),
        ("unicode", [u("Grüße, 世界! 🙂 café — naïve"), a("Привет · ∑ x² ✓"), u("日本語で答えて")], {}),
        ("empty", [u(""), a(""), u("")], {}),
        ("quotes", [u("it's \"quoted\" {{ not a tag }} {% nor this %}"), a("back\\slash")], {}),
    ]


def thinking_conversations():
    """Extra cases for Qwen3-style templates (<think> handling, enable_thinking)."""
    u = lambda c: {"role": "user", "content": c}
    a = lambda c: {"role": "assistant", "content": c}
    s = lambda c: {"role": "system", "content": c}
    think = [u("What is 3*7?"), a("<think>\n3*7 is 21.\n</think>\n\n21"), u("And 3*8?")]
    return [
        ("think_history", think, {}),
        ("think_last", [u("Hi"), a("<think>greeting</think>Hello there.")], {}),
        ("think_multiline", [s("sys"), u("q1"), a("<think>\n\nstep 1\nstep 2\n\n</think>\n\n\nanswer 1"), u("q2"),
                             a("no think tags here"), u("q3")], {}),
        ("enable_thinking_false", [u("Quick: capital of France?")], {"enable_thinking": False}),
        ("enable_thinking_true", [u("Quick: capital of France?")], {"enable_thinking": True}),
        ("enable_thinking_false_history", think, {"enable_thinking": False}),
        ("tool_response_user", [u("<tool_response>\n42\n</tool_response>"), u("real question")], {}),
    ]


# Small templates, each checking a few constructs against Jinja2.
CONSTRUCT_TEMPLATES = {
    "loop_variables": (
        "{% for m in messages %}"
        "{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.length }}"
        " first={{ loop.first }} last={{ loop.last }} prev={{ loop.previtem.role if loop.previtem is defined else '-' }}"
        " next={{ loop.nextitem.role if loop.nextitem is defined else '-' }}\n"
        "{% endfor %}"
    ),
    "loop_else_filter_unpack": (
        "{% for m in messages if m.role == 'user' %}[{{ loop.index }}:{{ m.content }}]{% else %}no users{% endfor %}\n"
        "{% for k, v in {'a': 1, 'b': [2, 3], 'c': none}.items() %}{{ k }}={{ v }};{% endfor %}\n"
        "{% for x in [] %}x{% else %}empty{% endfor %}\n"
        "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }} {% endfor %}\n"
        "{% for c in 'héllo' %}{{ c }}.{% endfor %}\n"
        "{% for k in {'z': 1, 'y': 2} %}{{ k }}{% endfor %}"
    ),
    "loop_scope_and_controls": (
        "{% set y = 0 %}{% for x in [1, 2, 3] %}{% if loop.first %}{% set y = 5 %}{% endif %}{{ y }}{% endfor %}|{{ y }}\n"
        "{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}\n"
        "{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }} {% endfor %}{% endfor %}\n"
        "{% if true %}{% set leaked = 'yes' %}{% endif %}{{ leaked }}"
    ),
    "namespace": (
        "{% set ns = namespace(count=0, last='', found=false) %}"
        "{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}"
        "{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}"
        "{{ ns.count }} {{ ns.last }} {{ ns.found }} {{ ns.missing is defined }}\n"
        "{% set ns2 = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}"
        "{% for message in messages[::-1] %}{% set index = (messages|length - 1) - loop.index0 %}"
        "{% if ns2.multi_step_tool and message.role == 'user' %}{% set ns2.multi_step_tool = false %}"
        "{% set ns2.last_query_index = index %}{% endif %}{% endfor %}{{ ns2.last_query_index }}"
    ),
    "filters_strings": (
        "[{{ '  a b \n'|trim }}] [{{ 'xxhixx'|trim('x') }}] {{ 'hello world-wide (x'|title }} {{ 'hELLO'|capitalize }}"
        " {{ 'MiXed'|upper }} {{ 'MiXed'|lower }} {{ 'abc'|length }} {{ 'ünï'|count }} {{ 42|string ~ '!' }}"
        " {{ 'a-b-c'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'abc'|reverse }} {{ 'abc'|list }}"
        " {{ 'abc'|first }} {{ 'abc'|last }} {{ 'x'|safe }}\n"
        "{% for m in messages %}{{ m.content|trim|upper }};{% endfor %}"
    ),
    "filters_sequences": (
        "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2, 3]|reverse|list }}"
        " {{ [1, 2, 3]|first }} {{ [1, 2, 3]|last }} {{ [1, 2, 3]|join(', ') }} {{ [1, 2, 3]|join }}"
        " {{ [1, 1, 2, 'a', 'A']|unique|list }} {{ [1, 2, 3]|sum }} {{ [4, 2, 8]|min }} {{ [4, 2, 8]|max }}\n"
        "{{ messages|map(attribute='role')|join(',') }} {{ messages|selectattr('role', 'equalto', 'user')|list|length }}"
        " {{ messages|rejectattr('role', 'eq', 'user')|map(attribute='content')|list }} {{ [1, 2, 3, 4]|select('odd')|list }}"
        " {{ [1, 2, 3, 4]|reject('even')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ ['a', 'b']|map('upper')|list }}"
        " {{ messages|selectattr('role')|list|length }} {{ {'b': 1, 'a': 2}|dictsort }} {{ {'a': 1}|items|list }}"
        " {{ {'a': 1, 'b': 2}|list }} {{ []|first is defined }}"
    ),
    "filters_numbers_json": (
        "{{ 2.5|round }} {{ 3.5|round }} {{ 2.567|round(2) }} {{ 2.5|round(0, 'floor') }} {{ 2.1|round(0, 'ceil') }} {{ 7|round }}"
        " {{ '3'|int }} {{ ' 42 '|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|int }} {{ '0x1f'|int(0, 16) }}"
        " {{ '2.5'|float }} {{ 'nope'|float }} {{ 3|float }} {{ -3|abs }} {{ -2.5|abs }}\n"
        "{{ {'a': 1, 'b': [1, 2.5, 'é'], 'c': none, 'd': true, 'e': {}}|tojson }}\n"
        "{{ {'a': 1, 'b': [1, 2], 'c': []}|tojson(indent=2) }}\n"
        "{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ 'x\"\\\\<\n\t'|tojson }} {{ [1.0, 1e20, 0.1]|tojson }}"
        " {{ {'a': [1, 2]}|tojson(separators=(',', ':')) }} {{ messages|tojson }}\n"
        "{{ {'k': 'v'}|tojson(indent='\t') }}"
    ),
    "defaults_and_tests": (
        "{{ missing|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }} {{ missing|d('x') }}"
        " {{ missing is defined }} {{ missing is undefined }} {{ none is none }} {{ 'a' is string }} {{ 1 is number }}"
        " {{ true is number }} {{ true is integer }} {{ 1 is integer }} {{ 1.5 is float }} {{ {} is mapping }}"
        " {{ [] is sequence }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ true is true }} {{ 1 is true }}"
        " {{ false is false }} {{ true is boolean }} {{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }}"
        " {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 2 is in [1, 2] }} {{ 3 is eq 3 }} {{ 3 is ne 4 }} {{ 3 is lt 4 }}"
        " {{ 3 is gt(2) }} {{ none is sameas none }} {{ x is not defined }} {{ tools is none }} {{ documents is none }}"
    ),
    "operators": (
        "{{ 1 + 2 }} {{ 7 - 10 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }}"
        " {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e-5 }} {{ 123456.789e3 }} {{ -7.5 // 2 }}"
        " {{ 7.5 % 2 }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ none ~ true ~ 1.5 ~ missing }}"
        " {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' <= 'b' }} {{ [1, 2] < [1, 3] }}"
        " {{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 1 in [1.0] }} {{ 'k' in {'k': 1} }} {{ not true }}"
        " {{ true and 'x' }} {{ 0 or 'y' }} {{ none or 0 }} {{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }}"
        " [{{ 'only' if false }}] {{ -(3) }} {{ +3 }} {{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }}"
        " {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 'x' + 'y'|upper }}"
    ),
    "literals_and_printing": (
        "{{ 'single' }} {{ \"double\" }} {{ 'esc\\ta\\\\b\\'c\\\"d\\x41\\u00e9\\n' }} {{ 'adj' 'acent' }} {{ 0x1F }} {{ 0b101 }}"
        " {{ 0o17 }} {{ 1_000 }} {{ 1.5e3 }} {{ true }} {{ True }} {{ false }} {{ none }} {{ None }} {{ [1, 'a', none, true, 1.5] }}"
        " {{ {'a': 1, 'b': [2], 3: 'c'} }} {{ ('x',) }} {{ (1, 2) }} {{ () }} {{ [] }} {{ {} }} {{ messages[0] }}"
        " {{ \"it's\" }} {{ ['it\\'s', 'say \"hi\"', 'both \\' \"'] }} {{ 'tab\\tnl\\n' ~ '' }} {{ ['\\x00\\x7f\\u00a0é'] }}"
        " {{ 1, 2 }} {{ 3.0 }} {{ -0.0 }} {{ 1e300 * 1e300 }} {{ 2.0 ** 0.5 }} {{ 1 / 3 }} {{ 100.0 }} {{ 1e15 }} {{ 0.0001 }}"
    ),
    "subscripts_and_slices": (
        "{{ messages[0]['role'] }} {{ messages[0].role }} {{ messages[-1].content }} {{ messages.0.role }}"
        " {{ 'abcdef'[1:4] }} {{ 'abcdef'[::-1] }} {{ 'abcdef'[::2] }} {{ 'abcdef'[-2:] }} {{ 'abcdef'[:-2] }}"
        " {{ [1, 2, 3, 4][1:] }} {{ [1, 2, 3, 4][::-2] }} {{ [1, 2, 3][5:] }} {{ (1, 2, 3)[1:] }} {{ 'héllo'[1] }}"
        " {{ 'héllo'[-1] }} [{{ [1, 2][5] }}] [{{ {'a': 1}['b'] }}] [{{ {'a': 1}.b }}] [{{ 'abc'.nope }}]"
        " {{ {'a': {'b': {'c': 'deep'}}}['a']['b'].c }} {{ messages[0].role is defined }} {{ messages[0].nope is defined }}"
        " {{ {1: 'one'}[1] }} {{ [[1, 2], [3]][0][-1] }}"
    ),
    "string_methods": (
        "[{{ '  pad  '.strip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ '  l'.lstrip() }}] [{{ 'r  '.rstrip() }}]"
        " [{{ '\\n\\nab\\n'.lstrip('\\n') }}] {{ 'a,b,,c'.split(',') }} {{ ' a  b c '.split() }} {{ 'a,b,c'.split(',', 1) }}"
        " {{ 'a b c'.split(none, 1) }} {{ 'a,b,c'.rsplit(',', 1) }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('bc') }}"
        " {{ 'abc'.startswith(('x', 'a')) }} {{ 'MiX'.upper() }} {{ 'MiX'.lower() }} {{ 'hello world'.title() }}"
        " {{ 'they\\'re 2nd'.title() }} {{ 'hELLO'.capitalize() }} {{ 'aXbXc'.replace('X', '-') }} {{ 'aaa'.replace('a', 'b', 1) }}"
        " {{ 'héllo'.find('l') }} {{ 'abc'.find('z') }} {{ 'banana'.count('an') }} {{ ', '.join(['a', 'b']) }}"
        " {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '123'.isdigit() }} {{ 'ab1'.isalpha() }}"
        " {{ '<think>r</think>\\n\\nans'.split('</think>')[-1].lstrip('\\n') }}\n"
        "{% for m in messages %}{{ m.content.strip() }}|{% endfor %}"
    ),
    "dict_methods": (
        "{% set d = {'a': 1, 'b': 2} %}{{ d.items()|list }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }}"
        " {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d|length }} {{ messages[0].get('role') }}"
        " {% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %} {{ dict(x=1, y='two') }} {{ 'role' in messages[0] }}"
    ),
    "macros": (
        "{% macro render(m, prefix='> ', suffix='') %}{{ prefix }}{{ m.role }}: {{ m.content }}{{ suffix }}{% endmacro %}"
        "{% for m in messages %}{{ render(m) }}\n{{ render(m, '# ') }}\n{{ render(m, suffix='!') }}\n{% endfor %}"
        "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n }}*{{ fact(n - 1) }}{% endif %}{% endmacro %}{{ fact(4) }}\n"
        "{% macro shout(x) -%}\n  {{ x|upper }}\n{%- endmacro %}[{{ shout('quiet') }}]"
    ),
    "whitespace_control": (
        "A\n  {% if true %}\n    B\n  {% endif %}\nC\n"
        "  {{- ' D ' -}}  \n"
        "E {# comment #}\n"
        "  {#- stripped comment -#}  F\n"
        "{%- for m in messages -%}\n  [{{ m.role }}]\n{%- endfor %}\n"
        "G  {%+ if true %}kept{% endif +%}\n"
        "H\n    {% set x = 1 %}\n    I {{ x }}\n"
        "{% if true %}    J{% endif %}\n"
        "\t{% for i in [1, 2] %}\n\t{{ i }}\n\t{% endfor %}\n"
        "K{{ 'v' }}\n{{ 'w' }}  \nL"
    ),
    "block_set_and_generation": (
        "{% set block %}\n  inner {{ messages|length }}\n{% endset %}[{{ block }}]\n"
        "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}"
        "{% else %}{{ m.content }}{% endif %}|{% endfor %}\n"
        "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 'x', 'y' %}{{ t }}"
    ),
    "special_tokens_and_prompt": (
        "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}{{ eos_token }}{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}{{ add_generation_prompt }}"
        "{% if not add_generation_prompt is defined %}never{% endif %}"
    ),
    "crlf_and_trailing_newline": "line1\r\n{% if true %}\r\nline2\r\n{% endif %}\rline3\n",
    "raise_exception_not_reached": (
        "{% if messages[0].role == 'robot' %}{{ raise_exception('no robots') }}{% endif %}ok {{ messages|length }}"
    ),
    "indent_filter": "{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'x\\ny'|indent(4, true) }}|{{ 'p\\n\\nq'|indent('>', blank=true) }}",
}

CONSTRUCT_CONVERSATIONS = [
    ("two_turns", [{"role": "user", "content": " hi there "}, {"role": "assistant", "content": "hello"}], {}),
    ("three_turns", [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"},
                     {"role": "assistant", "content": "a"}], {}),
]

# Templates that raise_exception() while rendering: the message must come through.
RAISING = {
    "raise_exception": (
        "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}"
        "{{ raise_exception('Unsupported role: ' + m.role) }}{% endif %}{{ m.content }}{% endfor %}"
    ),
}
RAISING_CONVERSATION = [{"role": "user", "content": "x"}, {"role": "robot", "content": "beep"}]

# Templates unmask refuses at parse time: (name, template, "line:column", text
# the message must contain, whether Jinja2 also refuses it).
REJECTIONS = [
    ("unsupported_filter", "{% for m in messages %}\n{{ m.content }}\n{{ m.content | wordwrap(5) }}{% endfor %}", "3:16",
     "unsupported filter 'wordwrap'", False),
    ("unsupported_test", "{{ 'x' if messages is escaped }}", "1:23", "unsupported test 'escaped'", False),
    ("unsupported_statement", "text\n  {% include 'other.jinja' %}", "2:6", "unsupported statement 'include'", False),
    ("unsupported_method", "{{ '{}'.format(1) }}", "1:8", "unsupported method 'format'", False),
    ("unsupported_function", "{{ cycler('a', 'b') }}", "1:4", "unsupported function 'cycler'", False),
    ("unsupported_raw", "a {% raw %}{{ x }}{% endraw %}", "1:3", "unsupported statement 'raw'", False),
    ("unclosed_if", "{% if true %}\nyes\n", "2:4", "expected 'elif' or 'else' or 'endif'", True),
    ("unclosed_for", "{% for m in messages %}{{ m }}", "1:31", "expected 'else' or 'endfor'", True),
    ("unclosed_variable", "{{ messages[0]", "1:15", "unexpected end of template, expected '}}'", True),
    ("unclosed_bracket", "{{ messages[0\n", "1:14", "unexpected end of template, expected ']'", True),
    ("unclosed_comment", "a {# never closed", "1:3", "missing end of comment tag", True),
    ("unclosed_string", "{{ 'abc }}", "1:4", "unterminated string literal", True),
    ("stray_endif", "{% endif %}", "1:4", "unexpected 'endif'", True),
    ("bad_expression", "{{ 1 + }}", "1:8", "unexpected end of print statement", True),
    ("unbalanced_bracket", "{{ (1 + 2] }}", "1:10", "unexpected ']', expected ')'", True),
    ("break_outside_loop", "{% break %}", "1:4", "'break' outside of a loop", True),
    ("too_deep", "{{ " + "(" * 70 + "1" + ")" * 70 + " }}", "1:", "nested deeper than 64 levels", False),
]


def make_tokenizer(bos, eos):
    return PreTrainedTokenizerFast(tokenizer_file=TOKENIZER_FILE, bos_token=bos, eos_token=eos)


def render(tokenizer, template, messages, add_generation_prompt, extra):
    tokenizer.chat_template = template
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, **extra)


def read(path):
    with open(path, "r", encoding="utf-8", newline="") as f:
        return f.read()


def write(path, text):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def main():
    assert transformers.__version__ == "4.57.1", transformers.__version__
    assert jinja2.__version__ == "3.1.6", jinja2.__version__
    os.makedirs(CONSTRUCTS, exist_ok=True)
    cases = []

    def add(file, bos, eos, name, messages, extra, template):
        tokenizer = make_tokenizer(bos, eos)
        for agp in (True, False):
            cases.append({
                "template": file,
                "case": name,
                "bos_token": bos or "",
                "eos_token": eos or "",
                "messages": messages,
                "add_generation_prompt": agp,
                "extra": extra,
                "rendered": render(tokenizer, template, messages, agp, extra),
            })

    # The embedded tiny models' own template (models/tiny-llada and tiny-ar
    # carry the same tokenizer_config.json), copied so the test can check the
    # file it ships against these goldens.
    with open(os.path.join(ROOT, "models", "tiny-llada", "tokenizer_config.json"), encoding="utf-8") as f:
        write(os.path.join(TEMPLATES, "tiny_models.jinja"), json.load(f)["chat_template"])
    for file, bos, eos in MODELS + [("tiny_models.jinja", None, "<|eos|>")]:
        template = read(os.path.join(TEMPLATES, file))
        convs = conversations() + (thinking_conversations() if file == "sdar_4b_chat.jinja" else [])
        for name, messages, extra in convs:
            add(file, bos, eos, name, messages, extra, template)

    for name, template in CONSTRUCT_TEMPLATES.items():
        file = "constructs/" + name + ".jinja"
        write(os.path.join(TEMPLATES, file), template)
        assert read(os.path.join(TEMPLATES, file)) == template
        for conv_name, messages, extra in CONSTRUCT_CONVERSATIONS:
            add(file, "<s>", "</s>", conv_name, messages, extra, template)

    for name, template in RAISING.items():
        file = "constructs/" + name + ".jinja"
        write(os.path.join(TEMPLATES, file), template)
        tokenizer = make_tokenizer("<s>", "</s>")
        try:
            render(tokenizer, template, RAISING_CONVERSATION, True, {})
            raise SystemExit(f"{name}: expected an exception")
        except jinja2.exceptions.TemplateError as e:
            cases.append({
                "template": file, "case": "raises", "bos_token": "<s>", "eos_token": "</s>",
                "messages": RAISING_CONVERSATION, "add_generation_prompt": True, "extra": {},
                "raises": str(e),
            })

    rejections = []
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[jinja2.ext.loopcontrols])
    for name, template, where, what, jinja_rejects in REJECTIONS:
        if jinja_rejects:
            try:
                env.from_string(template)
                raise SystemExit(f"{name}: Jinja2 accepts it")
            except (jinja2.exceptions.TemplateSyntaxError, SyntaxError):
                pass
        rejections.append({"case": name, "template": template, "location": where, "message": what})

    write(os.path.join(DATA, "goldens.json"), json.dumps(cases, ensure_ascii=False, indent=1) + "\n")
    write(os.path.join(DATA, "rejections.json"), json.dumps(rejections, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(cases)} goldens, {len(rejections)} rejections", file=sys.stderr)


if __name__ == "__main__":
    import jinja2.ext  # noqa: F401  (for the rejection check)
    import jinja2.sandbox  # noqa: F401
    main()
