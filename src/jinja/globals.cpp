// Global functions: range, namespace, dict, raise_exception, strftime_now.
#include <ctime>

#include "core/error.h"
#include "jinja/render.h"
#include "jinja/strings.h"

namespace frugal::jinja {

namespace {

Value range(Renderer& r, const CallArgs& a) {
  if (a.positional.empty() || a.positional.size() > 3) r.fail("range() takes 1 to 3 integers");
  int64_t v[3] = {0, 0, 1};
  for (size_t k = 0; k < a.positional.size(); ++k) v[k + (a.positional.size() == 1 ? 1 : 0)] = int_arg(r, &a.positional[k], 0, "range()");
  const int64_t start = v[0], stop = v[1], step = v[2];
  if (step == 0) r.fail("range() step must not be zero");
  const long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
  const long double count = span <= 0 ? 0 : (span + (std::abs(static_cast<long double>(step)) - 1)) / std::abs(static_cast<long double>(step));
  r.reserve_items(count > 1e18L ? INT64_MAX : static_cast<int64_t>(count));
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    items.push_back(Value(i));
    if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step)) break;
  }
  return r.make_list(std::move(items));
}

void add_entries(Renderer& r, const CallArgs& a, std::vector<std::pair<std::string, Value>>& out, const char* what) {
  auto put = [&](const std::string& k, const Value& v) {
    for (auto& e : out)
      if (e.first == k) {
        e.second = v;
        return;
      }
    out.emplace_back(k, v);
  };
  if (a.positional.size() > 1) r.fail(std::string(what) + " takes at most one positional argument");
  if (!a.positional.empty()) {
    const Value& src = a.positional[0];
    if (const Dict* d = src.dict()) {
      for (const auto& [k, v] : d->entries) put(k, v);
    } else if (const List* l = src.list()) {
      for (const Value& pair : l->items) {
        const List* p = pair.list();
        if (!p || p->items.size() != 2 || !p->items[0].text()) r.fail(std::string(what) + " needs [key, value] pairs");
        put(p->items[0].text()->bytes, p->items[1]);
      }
    } else {
      r.fail(std::string(what) + " needs a dict or a list of pairs, not a " + type_name(src));
    }
  }
  for (const auto& [k, v] : a.keyword) put(k, v);
}

// strftime_now: the local time, with the directives @huggingface/jinja knows (%Y %m %d %b %B %H %M %%).
Value strftime_now(Renderer& r, const CallArgs& a) {
  const std::string& format = text_arg(r, a.get(0, "format"), "strftime_now()").bytes;
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size() || std::string("YmdbBHM%").find(format[i + 1]) == std::string::npos) {
      out += format[i];
      continue;
    }
    char buf[64];
    const char spec[3] = {'%', format[++i], '\0'};
    out.append(buf, std::strftime(buf, sizeof buf, spec, &tm));
  }
  return r.make_string(std::move(out));
}

}  // namespace

bool is_global(const std::string& n) {
  return n == "range" || n == "namespace" || n == "dict" || n == "raise_exception" || n == "strftime_now";
}

Value call_global(Renderer& r, const std::string& n, const CallArgs& a) {
  if (n == "range") return range(r, a);
  if (n == "namespace") {
    Value ns = r.make_namespace();
    add_entries(r, a, ns.ns()->attrs, "namespace()");
    return ns;
  }
  if (n == "dict") {
    std::vector<std::pair<std::string, Value>> entries;
    add_entries(r, a, entries, "dict()");
    return r.make_dict(std::move(entries));
  }
  if (n == "raise_exception") {
    const Value* message = a.get(0, "message");
    r.fail("raise_exception: " + (message ? printed(r, *message) : std::string("(no message)")));
  }
  return strftime_now(r, a);
}

}  // namespace frugal::jinja
