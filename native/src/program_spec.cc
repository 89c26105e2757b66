#include "program_spec.h"

#include <cctype>

#include "errors.h"

namespace updraft {

DimExpr parse_dim_string(const std::string &text, const std::string &what) {
  std::string compact;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
  DimExpr dim;
  const size_t plus = compact.find('+');
  dim.symbol = compact.substr(0, plus);
  const auto valid_symbol = [](const std::string &s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
  };
  bool ok = valid_symbol(dim.symbol);
  if (ok && plus != std::string::npos) {
    const std::string number = compact.substr(plus + 1);
    ok = !number.empty() && number.size() <= 9;
    for (char c : number) ok = ok && std::isdigit(static_cast<unsigned char>(c));
    if (ok) dim.offset = std::stoll(number);
  }
  if (!ok) throw Error(what + ": cannot parse dim \"" + text + "\" (expected a number, \"name\" or \"name+k\")");
  return dim;
}

const char *role_name(TensorRole role) {
  switch (role) {
    case TensorRole::Weight: return "weight";
    case TensorRole::State: return "state";
    case TensorRole::Activation: return "activation";
    case TensorRole::Input: return "input";
    default: return "output";
  }
}

}  // namespace updraft
