// The TorchScript graph of a traced module, for the ONNX writer (`src/export/graph.rs`).
//
// `sb_jit_graph` loads a TorchScript file, puts it in eval mode, freezes it (`torch::jit::freeze`
// without numeric rewrites: the graph keeps the traced operations), inlines calls, propagates constants
// and removes dead code, then describes the graph as JSON: its tensor inputs and outputs, and every node
// in order with its kind (`aten::conv2d`, `prim::Constant`, …), input value ids, outputs (id, concrete
// sizes and dtype when the trace knows them) and, for constants, the value. Tensor constants come back
// as `at::Tensor*` (tch's `C_tensor`) in `tensors_out`, referred to by index in the JSON.
//
// Like the rest of the shim, errors come back as a malloc'd message (NULL on success), never unwinding
// into Rust. The JSON string and the pointer array are malloc'd too (the caller frees them with
// `sb_free`; the tensors are owned by the caller).
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/fixup_trace_scope_blocks.h>
#include <torch/csrc/jit/passes/normalize_ops.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

namespace {

char *copy_string(const std::string &s) {
  char *out = static_cast<char *>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

std::string quoted(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string number(double d) {
  if (std::isnan(d)) return "\"nan\"";
  if (std::isinf(d)) return d > 0 ? "\"inf\"" : "\"-inf\"";
  std::ostringstream s;
  s.precision(17);
  s << d;
  return s.str();
}

// `{"id":…,"shape":[…]|null,"dtype":"Float"|null}` of one value.
std::string value_json(const torch::jit::Value *v) {
  std::ostringstream s;
  s << "{\"id\":" << v->unique() << ",\"shape\":";
  auto tt = v->type()->cast<c10::TensorType>();
  auto sizes = tt ? tt->sizes().concrete_sizes() : c10::nullopt;
  if (sizes) {
    s << "[";
    for (size_t i = 0; i < sizes->size(); ++i) s << (i ? "," : "") << (*sizes)[i];
    s << "]";
  } else {
    s << "null";
  }
  s << ",\"dtype\":";
  if (tt && tt->scalarType())
    s << quoted(c10::toString(*tt->scalarType()));
  else
    s << "null";
  s << ",\"type\":" << quoted(v->type()->str()) << "}";
  return s.str();
}

// The JSON of a constant's value; tensors are appended to `tensors` and named by index.
std::string ivalue_json(const c10::IValue &iv, std::vector<at::Tensor> &tensors) {
  std::ostringstream s;
  if (iv.isNone()) {
    s << "{\"none\":true}";
  } else if (iv.isTensor()) {
    tensors.push_back(iv.toTensor().detach().contiguous());
    s << "{\"tensor\":" << tensors.size() - 1 << "}";
  } else if (iv.isBool()) {
    s << "{\"bool\":" << (iv.toBool() ? "true" : "false") << "}";
  } else if (iv.isInt()) {
    s << "{\"int\":" << iv.toInt() << "}";
  } else if (iv.isDouble()) {
    s << "{\"float\":" << number(iv.toDouble()) << "}";
  } else if (iv.isIntList()) {
    s << "{\"ints\":[";
    auto l = iv.toIntVector();
    for (size_t i = 0; i < l.size(); ++i) s << (i ? "," : "") << l[i];
    s << "]}";
  } else if (iv.isDoubleList()) {
    s << "{\"floats\":[";
    auto l = iv.toDoubleVector();
    for (size_t i = 0; i < l.size(); ++i) s << (i ? "," : "") << number(l[i]);
    s << "]}";
  } else if (iv.isBoolList()) {
    s << "{\"bools\":[";
    auto l = iv.toBoolList();
    for (size_t i = 0; i < l.size(); ++i) s << (i ? "," : "") << (l.get(i) ? "true" : "false");
    s << "]}";
  } else if (iv.isString()) {
    s << "{\"string\":" << quoted(iv.toStringRef()) << "}";
  } else if (iv.isDevice()) {
    s << "{\"device\":" << quoted(iv.toDevice().str()) << "}";
  } else {
    s << "{\"other\":" << quoted(iv.tagKind()) << "}";
  }
  return s.str();
}

}  // namespace

extern "C" {

// The frozen, inlined, constant-propagated graph of the `forward` of the TorchScript file `path`, with
// the shapes of every value for the input `example`.
char *sb_jit_graph(const char *path, const at::Tensor *example, char **json_out, at::Tensor ***tensors_out, int64_t *ntensors) {
  try {
    auto module = torch::jit::load(std::string(path));
    module.eval();
    auto frozen = torch::jit::freeze(module, c10::nullopt, /*optimize_numerics=*/false);
    auto graph = frozen.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    torch::jit::ConstantPropagation(graph);
    // Several outputs come back as one tuple (see `sb_trace_end`): unpack it into graph outputs.
    if (graph->outputs().size() == 1 && graph->outputs()[0]->node()->kind() == c10::prim::TupleConstruct) {
      auto *tuple = graph->outputs()[0]->node();
      graph->eraseOutput(0);
      for (auto *v : tuple->inputs()) graph->registerOutput(v);
      tuple->destroy();
    }
    torch::jit::EliminateDeadCode(graph);
    // A saved module has lost the traced shapes: run a copy of the graph on the example input with every
    // tensor value as an extra output, and give each value the type of what it holds.
    {
      auto probe = graph->copy();
      std::vector<torch::jit::Value *> mine, theirs;
      auto a = graph->nodes().begin();
      for (auto *n : probe->nodes()) {
        auto *m = *a++;
        if (n->kind() == c10::prim::Constant) continue;
        for (size_t i = 0; i < n->outputs().size(); ++i)
          if (n->outputs()[i]->type()->cast<c10::TensorType>()) {
            theirs.push_back(n->outputs()[i]);
            mine.push_back(m->outputs()[i]);
          }
      }
      while (!probe->outputs().empty()) probe->eraseOutput(0);
      probe->registerOutput(probe->insertNode(probe->createTuple(theirs))->output());
      torch::jit::Stack stack;
      for (auto *v : probe->inputs())
        stack.emplace_back(v->type()->cast<c10::TensorType>() ? c10::IValue(*example) : c10::IValue(frozen._ivalue()));
      torch::jit::GraphFunction fn("probe", probe, nullptr);
      fn.run(stack);
      if (stack.size() != 1 || !stack[0].isTuple()) throw std::runtime_error("the probe run gave no tuple");
      const auto &values = stack[0].toTupleRef().elements();
      for (size_t i = 0; i < mine.size(); ++i) {
        const auto &iv = values[i];
        if (iv.isTensor()) mine[i]->setType(c10::TensorType::create(iv.toTensor()));
      }
      for (auto *v : graph->inputs())
        if (v->type()->cast<c10::TensorType>()) v->setType(c10::TensorType::create(*example));
    }
    std::vector<at::Tensor> tensors;
    std::ostringstream s;
    s << "{\"inputs\":[";
    bool first = true;
    for (auto *v : graph->inputs()) {
      if (!v->type()->cast<c10::TensorType>()) continue;  // `self` when it survives
      s << (first ? "" : ",") << value_json(v);
      first = false;
    }
    s << "],\"outputs\":[";
    first = true;
    for (auto *v : graph->outputs()) {
      s << (first ? "" : ",") << value_json(v);
      first = false;
    }
    s << "],\"nodes\":[";
    first = true;
    for (auto *node : graph->nodes()) {
      s << (first ? "" : ",") << "{\"kind\":" << quoted(node->kind().toQualString()) << ",\"inputs\":[";
      first = false;
      for (size_t i = 0; i < node->inputs().size(); ++i) s << (i ? "," : "") << node->inputs()[i]->unique();
      s << "],\"outputs\":[";
      for (size_t i = 0; i < node->outputs().size(); ++i) s << (i ? "," : "") << value_json(node->outputs()[i]);
      s << "]";
      if (node->kind() == c10::prim::Constant) {
        auto iv = torch::jit::toIValue(node->output());
        s << ",\"value\":" << (iv ? ivalue_json(*iv, tensors) : std::string("{\"none\":true}"));
      }
      if (!node->blocks().empty()) s << ",\"blocks\":" << node->blocks().size();
      s << "}";
    }
    s << "]}";
    auto **out = static_cast<at::Tensor **>(std::malloc(sizeof(at::Tensor *) * (tensors.size() + 1)));
    if (out == nullptr) throw std::runtime_error("out of memory");
    for (size_t i = 0; i < tensors.size(); ++i) out[i] = new at::Tensor(tensors[i]);
    *json_out = copy_string(s.str());
    *tensors_out = out;
    *ntensors = static_cast<int64_t>(tensors.size());
    return nullptr;
  } catch (const std::exception &e) {
    return copy_string(e.what());
  } catch (...) {
    return copy_string("unknown C++ exception in the TorchScript graph reader");
  }
}

// Starts tracing (as tch's `atm_create_for_tracing`): a new module `skipblock` whose `forward` will take
// the `n` tensors `inputs`.
char *sb_trace_begin(at::Tensor **inputs, int64_t n, torch::jit::Module **out) {
  try {
    if (torch::jit::tracer::isTracing()) throw std::invalid_argument("cannot nest tracing calls");
    torch::jit::Module module("skipblock");
    auto state = std::make_shared<torch::jit::tracer::TracingState>();
    torch::jit::tracer::setTracingState(state);
    state->graph->insertInput(0, "self")->setType(module._ivalue()->type());
    for (int64_t i = 0; i < n; ++i) {
      auto *value = state->graph->addInput();
      value->setType(c10::TensorType::get());
      state->setValue(*inputs[i], value);
    }
    *out = new torch::jit::Module(module);
    return nullptr;
  } catch (const std::exception &e) {
    torch::jit::tracer::abandon();
    return copy_string(e.what());
  }
}

// Ends tracing: `forward` returns the `n` tensors `outputs` (one tensor, or a tuple of them: a saved
// method has one return value), then the module is saved to `path` and freed.
char *sb_trace_end(torch::jit::Module *module, at::Tensor **outputs, int64_t n, const char *path) {
  std::unique_ptr<torch::jit::Module> owned(module);
  try {
    auto state = torch::jit::tracer::getTracingState();
    if (state == nullptr) throw std::invalid_argument("not tracing");
    auto &g = state->graph;
    std::vector<torch::jit::Value *> values;
    for (int64_t i = 0; i < n; ++i) values.push_back(state->getOutput(*outputs[i], i));
    if (values.size() == 1)
      g->registerOutput(values[0]);
    else
      g->registerOutput(g->insertNode(g->createTuple(values))->output());
    torch::jit::FixupTraceScopeBlocks(g, owned.get());
    torch::jit::NormalizeOps(g);
    torch::jit::tracer::setTracingState(nullptr);
    auto fn = owned->_ivalue()->compilation_unit()->create_function("forward", g);
    owned->type()->addMethod(fn);
    owned->save(std::string(path));
    return nullptr;
  } catch (const std::exception &e) {
    torch::jit::tracer::abandon();
    return copy_string(e.what());
  }
}

}  // extern "C"
