// Template::parse and render: the context's JSON becomes values (messages[k]'s content tagged k),
// then the program runs.
#include "jinja/chat_template.h"

#include <cmath>

#include "core/error.h"
#include "jinja/parser.h"
#include "jinja/render.h"

namespace frugal::jinja {

namespace {

template <typename J>
class ContextReader {
 public:
  ContextReader(const std::string& name, const Limits& limits) : name_(name), limits_(limits) {}

  // A JSON value; strings tagged `tag` (messages[k]'s content). A float with an integral value
  // becomes an integer: JavaScript cannot tell 1.0 from 1, and @huggingface/jinja reads it as 1.
  Value read(const J& j, int depth, int32_t tag = -1) {
    if (depth > limits_.max_depth) fail("the context nests deeper than " + std::to_string(limits_.max_depth) + " levels");
    if (j.is_null()) return Value(None{});
    if (j.is_boolean()) return Value(j.template get<bool>());
    if (j.is_number_integer() && !j.is_number_unsigned()) return Value(j.template get<int64_t>());
    if (j.is_number()) {
      const double f = j.template get<double>();
      if (std::floor(f) == f && std::fabs(f) < 9007199254740992.0) return Value(static_cast<int64_t>(f));
      return Value(f);
    }
    if (j.is_string()) {
      const std::string& s = j.template get_ref<const std::string&>();
      if (!valid_utf8(s)) fail("a string of the context is not valid UTF-8");
      return Value::str(s, tag);
    }
    if (j.is_array()) {
      auto list = std::make_shared<List>();
      for (const J& item : j) {
        list->items.push_back(read(item, depth + 1));
        list->depth = std::max(list->depth, depth_of(list->items.back()) + 1);
      }
      return Value(std::shared_ptr<const List>(std::move(list)));
    }
    return read_object(j, depth, -1);
  }

  // An object; content_tag >= 0 tags its "content" string (a message).
  Value read_object(const J& j, int depth, int32_t content_tag) {
    auto dict = std::make_shared<Dict>();
    for (auto it = j.begin(); it != j.end(); ++it) {
      const int32_t tag = content_tag >= 0 && it.key() == "content" ? content_tag : -1;
      dict->entries.emplace_back(it.key(), read(it.value(), depth + 1, tag));
      dict->depth = std::max(dict->depth, depth_of(dict->entries.back().second) + 1);
    }
    dict->index();
    return Value(std::shared_ptr<const Dict>(std::move(dict)));
  }

  Rendered render(const Program& program, const J& context) {
    if (!context.is_object()) fail("the context must be a JSON object");
    auto globals = std::make_shared<Scope>();
    std::unordered_map<const Dict*, int32_t> messages;
    for (auto it = context.begin(); it != context.end(); ++it) {
      if (it.key() == "messages" && it.value().is_array()) {
        auto list = std::make_shared<List>();
        for (const J& m : it.value()) {
          const auto k = static_cast<int32_t>(list->items.size());
          list->items.push_back(m.is_object() ? read_object(m, 1, k) : read(m, 1));
          if (const Dict* d = list->items.back().dict()) messages[d] = k;
          list->depth = std::max(list->depth, depth_of(list->items.back()) + 1);
        }
        globals->vars[it.key()] = Value(std::shared_ptr<const List>(std::move(list)));
      } else {
        globals->vars[it.key()] = read(it.value(), 0);
      }
    }
    Renderer renderer(name_, limits_);
    return renderer.run(program, std::move(globals), std::move(messages));
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw Error(name_ + ": " + message); }
  const std::string& name_;
  const Limits& limits_;
};

}  // namespace

Template Template::parse(std::string_view source, std::string name, Limits limits) {
  auto program = parse_template(source, name, limits.max_depth);
  return Template(std::move(program), std::move(name), limits);
}

Rendered Template::render(const nlohmann::json& context) const {
  return ContextReader<nlohmann::json>(name_, limits_).render(*program_, context);
}

Rendered Template::render(const nlohmann::ordered_json& context) const {
  return ContextReader<nlohmann::ordered_json>(name_, limits_).render(*program_, context);
}

}  // namespace frugal::jinja
