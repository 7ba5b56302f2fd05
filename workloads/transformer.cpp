#include "workloads/transformer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <thread>

namespace capbench {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Unit-variance, zero-mean value from a counter, close to normal: deterministic per (seed,
// index), independent of tensor order and of the C library. The sum of four 16-bit uniforms
// (Irwin-Hall, scaled to variance 1, bounded at ±3.46): a hash and a few adds per element, where
// Box-Muller's log and cos made initialising a large vocabulary's embedding take most of a
// short run.
float counter_normal(uint64_t seed, uint64_t index) {
  const uint64_t r = splitmix64(seed * 0x100000001B3ull ^ splitmix64(index));
  const uint32_t sum = static_cast<uint32_t>(r & 0xFFFF) +
                       static_cast<uint32_t>((r >> 16) & 0xFFFF) +
                       static_cast<uint32_t>((r >> 32) & 0xFFFF) + static_cast<uint32_t>(r >> 48);
  // Each uniform is (u + 0.5) / 65536 in (0, 1), mean 1/2, variance 1/12: four have mean 2 and
  // variance 1/3.
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(3) / 2^16
  return (static_cast<float>(sum) + 2.0f - 2.0f * 65536.0f) * kScale;
}

// Elements [begin, end) of one parameter tensor.
void init_range(const ModelConfig& cfg, const ParamSpec& spec, uint64_t seed, float* out,
                int64_t begin, int64_t end) {
  const double std_dev = 0.02;
  const double scaled = std_dev / std::sqrt(2.0 * static_cast<double>(cfg.n_layers));
  for (int64_t i = begin; i < end; ++i) {
    switch (spec.init) {
      case ParamSpec::Init::ones:
        out[i] = 1.0f;
        break;
      case ParamSpec::Init::normal:
        out[i] = static_cast<float>(std_dev * counter_normal(seed, spec.offset + i));
        break;
      case ParamSpec::Init::normal_scaled:
        out[i] = static_cast<float>(scaled * counter_normal(seed, spec.offset + i));
        break;
    }
  }
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

double bytes_of(DType dtype, const std::vector<int64_t>& dims) {
  double n = static_cast<double>(dtype_size(dtype));
  for (int64_t d : dims) n *= static_cast<double>(d);
  return n;
}

}  // namespace

void init_values(const ModelConfig& cfg, const ParamSpec& spec, uint64_t seed, float* out,
                 int64_t n, int threads) {
  // Each value depends on its index alone (counter_normal), so any split gives the same tensor;
  // a 7B model's parameters would take a minute on one thread.
  constexpr int64_t kChunk = int64_t{1} << 16;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t workers = std::min<int64_t>(threads, (n + kChunk - 1) / kChunk);
  if (workers <= 1) return init_range(cfg, spec, seed, out, 0, n);
  std::vector<std::thread> team;
  for (int64_t w = 0; w < workers; ++w)
    team.emplace_back(
        [&, w] { init_range(cfg, spec, seed, out, n * w / workers, n * (w + 1) / workers); });
  for (std::thread& t : team) t.join();
}

Tensor shaped(void* data, DType dtype, const std::vector<int64_t>& dims) {
  if (dims.empty() || dims.size() > static_cast<size_t>(kMaxRank))
    throw std::invalid_argument("a tensor has 1 to 4 dimensions");
  Tensor t;
  t.data = data;
  t.dtype = dtype;
  t.rank = static_cast<int>(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) t.shape[d] = dims[d];
  return t;
}

std::vector<ActivationSpec> layer_activation_specs(const ModelConfig& cfg, int64_t batch,
                                                   int64_t seq, DType dt) {
  const int64_t n = batch * seq, c = cfg.d_model, qd = cfg.q_dim(), kd = cfg.kv_dim();
  const int64_t f = cfg.d_ff;
  const DType f32 = DType::f32;
  return {{&LayerActs::ln1, dt, {n, c}},
          {&LayerActs::rstd1, f32, {n}},
          // q_lin, k_lin and v side by side: with one row they are one product's output.
          {&LayerActs::q_lin, dt, {n, qd}},
          {&LayerActs::k_lin, dt, {n, kd}},
          {&LayerActs::v, dt, {n, kd}},
          {&LayerActs::q, dt, {n, qd}},
          {&LayerActs::k, dt, {n, kd}},
          {&LayerActs::att, dt, {n, qd}},
          {&LayerActs::lse, f32, {batch, cfg.n_heads, seq}},
          {&LayerActs::o, dt, {n, c}},
          {&LayerActs::mid, dt, {n, c}},
          {&LayerActs::ln2, dt, {n, c}},
          {&LayerActs::rstd2, f32, {n}},
          {&LayerActs::gate_up, dt, {n, 2 * f}},
          {&LayerActs::h, dt, {n, f}},
          {&LayerActs::m, dt, {n, c}}};
}

// Bytes one activation takes in its layer's block: a multiple of 64, so each starts aligned.
static size_t block_bytes(const ActivationSpec& spec) {
  return (static_cast<size_t>(bytes_of(spec.dtype, spec.dims)) + 63) / 64 * 64;
}

LayerActs layer_acts_at(void* block, const std::vector<ActivationSpec>& table) {
  char* at = static_cast<char*>(block);
  LayerActs a;
  for (const ActivationSpec& spec : table) {
    a.*spec.member = shaped(at, spec.dtype, spec.dims);
    at += block_bytes(spec);
  }
  return a;
}

size_t layer_block_bytes(const std::vector<ActivationSpec>& table) {
  size_t total = 0;
  for (const ActivationSpec& spec : table) total += block_bytes(spec);
  return total;
}

LayerActs make_layer_acts(TensorStore& store, const std::vector<ActivationSpec>& table) {
  return layer_acts_at(store.raw(layer_block_bytes(table)), table);
}

double layer_activation_bytes(const ModelConfig& cfg, int64_t batch, int64_t seq, DType dtype) {
  return static_cast<double>(layer_block_bytes(layer_activation_specs(cfg, batch, seq, dtype)));
}

double model_bytes(const ModelConfig& cfg, bool training, DType dtype) {
  const double n = static_cast<double>(param_count(cfg));
  if (!training) return n * static_cast<double>(dtype_size(dtype));
  // fp32 master, gradients and both moments; the bf16 compute copy in mixed precision.
  return n * 16.0 + (dtype == DType::f32 ? 0.0 : n * static_cast<double>(dtype_size(dtype)));
}

// The tensors of a training pass besides the per-layer activations, as TrainingPass allocates them.
double training_pass_bytes(const ModelConfig& cfg, int64_t batch, int64_t seq, DType dt) {
  const double n = static_cast<double>(batch) * static_cast<double>(seq);
  const double e = static_cast<double>(dtype_size(dt));
  const double c = static_cast<double>(cfg.d_model), qd = static_cast<double>(cfg.q_dim());
  const double kd = static_cast<double>(cfg.kv_dim()), f = static_cast<double>(cfg.d_ff);
  const double v = static_cast<double>(cfg.vocab), layers = static_cast<double>(cfg.n_layers);
  const double tokens_and_targets = 2 * n * 4;
  const double resid = (layers + 1) * n * c * e;
  const double head =
      n * c * e + n * 4 + 2 * n * v * e + n * 4;  // lnf, rstdf, logits, dlogits, losses
  const double scratch = n * e * (2 * c + 3 * qd + 3 * kd + f + 2 * f);
  return tokens_and_targets + resid + layers * layer_activation_bytes(cfg, batch, seq, dt) + head +
         scratch;
}

// An inference pass: scratch for batch · max_new_tokens rows, and the KV cache.
double inference_pass_bytes(const ModelConfig& cfg, int64_t batch, int64_t max_new_tokens,
                            int64_t capacity, DType dt) {
  const double rows = static_cast<double>(batch) * static_cast<double>(max_new_tokens);
  const double e = static_cast<double>(dtype_size(dt));
  const double c = static_cast<double>(cfg.d_model);
  const double rest = rows * (3 * c * e + 4 + static_cast<double>(cfg.vocab) * e);
  const double cache = 2.0 * static_cast<double>(cfg.n_layers) * static_cast<double>(batch) *
                       static_cast<double>(capacity) * static_cast<double>(cfg.kv_dim()) * e;
  return layer_activation_bytes(cfg, batch, max_new_tokens, dt) + rest + cache;
}

Tensor TensorStore::make(DType dtype, std::initializer_list<int64_t> dims) {
  return make(dtype, std::vector<int64_t>(dims));
}

Tensor TensorStore::make(DType dtype, const std::vector<int64_t>& dims) {
  Tensor t = shaped(nullptr, dtype, dims);
  t.data = raw(t.bytes());
  return t;
}

void* TensorStore::raw(size_t bytes) {
  buffers_.emplace_back(backend_, bytes);
  bytes_ += bytes;
  return buffers_.back().data();
}

Weights weight_views(const ModelConfig& cfg, void* flat_base, DType dtype) {
  char* base = static_cast<char*>(flat_base);
  const size_t elt = dtype_size(dtype);
  const std::vector<ParamSpec> specs = param_specs(cfg);
  size_t i = 0;
  auto next = [&]() {
    const ParamSpec& s = specs.at(i++);
    Tensor t;
    t.data = base + static_cast<size_t>(s.offset) * elt;
    t.dtype = dtype;
    t.rank = static_cast<int>(s.shape.size());
    for (size_t d = 0; d < s.shape.size(); ++d) t.shape[d] = s.shape[d];
    return t;
  };
  Weights w;
  w.embedding = next();
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    LayerWeights lw;
    lw.attn_norm = next();
    lw.wq = next();
    lw.wk = next();
    lw.wv = next();
    lw.wo = next();
    lw.mlp_norm = next();
    lw.w_gate_up = next();
    lw.w_down = next();
    w.layers.push_back(lw);
  }
  w.final_norm = next();
  w.head = next();
  return w;
}

std::vector<float> initial_params(const ModelConfig& cfg, uint64_t seed) {
  std::vector<float> out(static_cast<size_t>(param_count(cfg)));
  for (const ParamSpec& s : param_specs(cfg))
    init_values(cfg, s, seed, out.data() + s.offset, numel_of(s.shape), 1);
  return out;
}

namespace {

// The values of one parameter of `part`, the tensor-parallel shard of `cfg`: its rows (wq, wk, wv;
// the gate and the up halves of w_gate_up) or its columns (wo, w_down) of the whole model's tensor,
// every value drawn at its index in the whole model, so that the shards hold exactly one device's
// values.
void shard_values(const ModelConfig& cfg, const ModelConfig& part, const TensorShard& shard,
                  const ParamSpec& whole, uint64_t seed, float* out) {
  const int64_t c = cfg.d_model, hd = cfg.head_dim(), r = shard.rank;
  auto rows = [&](int64_t first_row, int64_t count, float* to) {
    ParamSpec s = whole;
    s.offset = whole.offset + first_row * c;
    init_values(cfg, s, seed, to, count * c);
  };
  auto columns = [&](int64_t width, int64_t first, int64_t count) {
    for (int64_t row = 0; row < c; ++row) {
      ParamSpec s = whole;
      s.offset = whole.offset + row * width + first;
      init_values(cfg, s, seed, out + row * count, count, 1);
    }
  };
  using R = ParamSpec::Role;
  switch (whole.role) {
    case R::wq:
      return rows(r * part.q_dim(), part.q_dim(), out);
    case R::wk:
    case R::wv:
      return rows(shard_first_kv_head(cfg, shard.tp, r) * hd, part.kv_dim(), out);
    case R::wo:
      return columns(cfg.q_dim(), r * part.q_dim(), part.q_dim());
    case R::w_gate_up:
      rows(r * part.d_ff, part.d_ff, out);
      return rows(cfg.d_ff + r * part.d_ff, part.d_ff, out + part.d_ff * c);
    case R::w_down:
      return columns(cfg.d_ff, r * part.d_ff, part.d_ff);
    case R::embedding:
    case R::attn_norm:
    case R::mlp_norm:
    case R::final_norm:
    case R::head:
      return init_values(cfg, whole, seed, out, numel_of(whole.shape));  // whole on every rank
  }
}

}  // namespace

void Model::sum_over_shards(const Tensor& partial) const {
  if (!tp_ranks_) return;
  // The partial result is complete before the ranks read it: on the host, a synchronisation; on
  // the backend's timeline, the collective is queued after the ops that make it.
  if (!tp_ranks_->on_backend_timeline()) backend_.synchronize();
  tp_ranks_->all_reduce(partial, ReduceOp::sum)->wait();
}

Model::Model(Backend& backend, const ModelConfig& cfg, uint64_t seed, bool training, DType dtype,
             const TensorShard* shard)
    : backend_(backend),
      tp_ranks_(shard && shard->tp > 1 ? shard->ranks : nullptr),
      cfg_(shard ? tensor_parallel_shard(cfg, shard->tp) : cfg),
      dtype_(dtype),
      store_(backend) {
  if (dtype != DType::f32 && dtype != DType::bf16)
    throw std::invalid_argument(std::string("the model runs at fp32 or bf16, not ") +
                                dtype_name(dtype));
  const int64_t n = param_count(cfg_);
  const bool mixed = training && dtype != DType::f32;
  params_ = store_.make(training ? DType::f32 : dtype, {n});
  compute_ = mixed ? store_.make(dtype, {n}) : params_;
  weights_ = weight_views(cfg_, compute_.data, dtype);
  // Upload tensor by tensor, so host memory stays at one tensor even for a 70B-shaped model.
  std::vector<float> host;
  const size_t elt = dtype_size(params_.dtype);
  const std::vector<ParamSpec> whole_specs = shard ? param_specs(cfg) : std::vector<ParamSpec>{};
  size_t index = 0;
  for (const ParamSpec& s : param_specs(cfg_)) {
    const int64_t count = numel_of(s.shape);
    host.resize(static_cast<size_t>(count));
    if (shard)
      shard_values(cfg, cfg_, *shard, whole_specs.at(index++), seed, host.data());
    else
      init_values(cfg, s, seed, host.data(), count);
    const Tensor part(static_cast<char*>(params_.data) + static_cast<size_t>(s.offset) * elt,
                      params_.dtype, {count});
    upload_floats(backend, part, host.data(), host.size());
  }
  refresh_compute_weights();
  if (training) {
    grad_flat_ = store_.make(DType::f32, {n});
    m_ = store_.make(DType::f32, {n});
    v_ = store_.make(DType::f32, {n});
    grads_ = weight_views(cfg_, grad_flat_.data, DType::f32);
    backend.fill(grad_flat_, 0.0f);
    backend.fill(m_, 0.0f);
    backend.fill(v_, 0.0f);
  }
}

std::vector<float> Model::download(const Tensor& flat) const {
  return download_floats(backend_, flat);
}

void Model::upload_params(const std::vector<float>& host) {
  if (static_cast<int64_t>(host.size()) != params_.numel())
    throw std::invalid_argument("upload_params: size differs from the model's parameter count");
  upload_floats(backend_, params_, host.data(), host.size());
  refresh_compute_weights();
}

void Model::refresh_compute_weights() {
  if (compute_.data != params_.data) backend_.convert(compute_, params_);
}

std::vector<std::pair<int64_t, int64_t>> one_row_product_shapes(const ModelConfig& cfg) {
  const int64_t d = cfg.d_model;
  return {{d, cfg.q_dim() + 2 * cfg.kv_dim()},  // Q, K and V as one product (layer_forward)
          {cfg.q_dim(), d},
          {d, 2 * cfg.d_ff},
          {cfg.d_ff, d},
          {d, cfg.vocab}};
}

void layer_forward(const Model& model, const LayerWeights& w, const LayerActs& a, const Tensor& in,
                   const Tensor& out, int64_t batch, int64_t seq, int64_t pos, KvCache* cache,
                   int64_t layer) {
  Backend& be = model.backend();
  const ModelConfig& cfg = model.config();
  const int64_t hd = cfg.head_dim();
  const RmsNormArgs norm{static_cast<float>(cfg.norm_eps)};
  const RopeArgs rope{pos, static_cast<float>(cfg.rope_theta), cfg.max_seq};
  const MatmulArgs linear{false, true, 1.0f, 0.0f};  // y = x · Wᵀ

  be.rmsnorm_fwd(a.ln1, a.rstd1, in, w.attn_norm, norm);
  // With one row (batch-1 decode), [wq; wk; wv] (adjacent in the flat parameters) times the row
  // writes q_lin, k_lin and v (adjacent in the activation block) as one product: one weight
  // stream instead of three short ones.
  auto follows = [](const Tensor& first, const Tensor& next) {
    return static_cast<const char*>(first.data) + first.bytes() == next.data;
  };
  if (a.ln1.rows() == 1 && follows(w.wq, w.wk) && follows(w.wk, w.wv) &&
      follows(a.q_lin, a.k_lin) && follows(a.k_lin, a.v)) {
    const int64_t outputs = w.wq.dim(0) + w.wk.dim(0) + w.wv.dim(0);
    be.matmul(shaped(a.q_lin.data, a.q_lin.dtype, {1, outputs}), a.ln1,
              shaped(w.wq.data, w.wq.dtype, {outputs, w.wq.dim(1)}), linear);
  } else {
    be.matmul(a.q_lin, a.ln1, w.wq, linear);
    be.matmul(a.k_lin, a.ln1, w.wk, linear);
    be.matmul(a.v, a.ln1, w.wv, linear);
  }
  const Tensor q4 = a.q.reshaped({batch, seq, cfg.n_heads, hd});
  const Tensor k4 = a.k.reshaped({batch, seq, cfg.n_kv_heads, hd});
  const Tensor v4 = a.v.reshaped({batch, seq, cfg.n_kv_heads, hd});
  const Tensor att4 = a.att.reshaped({batch, seq, cfg.n_heads, hd});
  be.rope_fwd(q4, a.q_lin.reshaped({batch, seq, cfg.n_heads, hd}), rope);
  be.rope_fwd(k4, a.k_lin.reshaped({batch, seq, cfg.n_kv_heads, hd}), rope);
  if (cache) {
    const Tensor& kc = cache->k[static_cast<size_t>(layer)];
    const Tensor& vc = cache->v[static_cast<size_t>(layer)];
    be.kv_append(kc, vc, k4, v4, KvAppendArgs{pos});
    if (pos == 0)
      be.attention_fwd(att4, a.lse, q4, k4, v4, AttentionArgs{});
    else
      be.attention_decode(att4, q4, kc, vc, DecodeArgs{pos});
  } else {
    be.attention_fwd(att4, a.lse, q4, k4, v4, AttentionArgs{});
  }
  be.matmul(a.o, a.att, w.wo, linear);
  model.sum_over_shards(a.o);
  be.add(a.mid, in, a.o);
  be.rmsnorm_fwd(a.ln2, a.rstd2, a.mid, w.mlp_norm, norm);
  be.matmul(a.gate_up, a.ln2, w.w_gate_up, linear);
  be.swiglu_fwd(a.h, a.gate_up);
  be.matmul(a.m, a.h, w.w_down, linear);
  model.sum_over_shards(a.m);
  be.add(out, a.mid, a.m);
}

// ---- training -------------------------------------------------------------------------------

TrainingPass::TrainingPass(Model& model, int64_t batch, int64_t seq)
    : model_(model), be_(model.backend()), batch_(batch), seq_(seq), store_(model.backend()) {
  const ModelConfig& cfg = model.config();
  if (seq > cfg.max_seq) throw std::invalid_argument("sequence longer than the model's max_seq");
  if (model.grads_flat().data == nullptr)
    throw std::invalid_argument("TrainingPass needs a model built with training state");
  const int64_t n = batch * seq, c = cfg.d_model, qd = cfg.q_dim(), kd = cfg.kv_dim();
  const int64_t f = cfg.d_ff, v = cfg.vocab;
  const DType dt = model.dtype();
  tokens_ = store_.make(DType::i32, {batch, seq});
  targets_ = store_.make(DType::i32, {n});
  for (int64_t l = 0; l <= cfg.n_layers; ++l) resid_.push_back(store_.make(dt, {n, c}));
  const std::vector<ActivationSpec> table = layer_activation_specs(cfg, batch, seq, dt);
  for (int64_t l = 0; l < cfg.n_layers; ++l) acts_.push_back(make_layer_acts(store_, table));
  lnf_ = store_.make(dt, {n, c});
  rstdf_ = store_.make(DType::f32, {n});
  logits_ = store_.make(dt, {n, v});
  dlogits_ = store_.make(dt, {n, v});
  losses_ = store_.make(DType::f32, {n});
  dresid_ = store_.make(dt, {n, c});
  dln_ = store_.make(dt, {n, c});
  datt_ = store_.make(dt, {n, qd});
  dq_ = store_.make(dt, {n, qd});
  dk_ = store_.make(dt, {n, kd});
  dv_ = store_.make(dt, {n, kd});
  dq_lin_ = store_.make(dt, {n, qd});
  dk_lin_ = store_.make(dt, {n, kd});
  dh_ = store_.make(dt, {n, f});
  dgate_up_ = store_.make(dt, {n, 2 * f});
  for (const ParamSpec& spec : param_specs(cfg)) {
    if (spec.role == ParamSpec::Role::final_norm) final_norm_offset_ = spec.offset;
    if (spec.role == ParamSpec::Role::attn_norm) layer_offsets_.push_back(spec.offset);
  }
}

void TrainingPass::set_batch(const std::vector<int32_t>& tokens,
                             const std::vector<int32_t>& targets) {
  if (static_cast<int64_t>(tokens.size()) != tokens_.numel() ||
      static_cast<int64_t>(targets.size()) != targets_.numel())
    throw std::invalid_argument("set_batch: expected B·T tokens and targets");
  be_.copy_to_device(tokens_.data, tokens.data(), tokens_.bytes());
  be_.copy_to_device(targets_.data, targets.data(), targets_.bytes());
}

void TrainingPass::forward() {
  const ModelConfig& cfg = model_.config();
  const Weights& w = model_.weights();
  const int64_t n = batch_ * seq_;
  be_.embedding_fwd(resid_[0].reshaped({batch_, seq_, cfg.d_model}), tokens_, w.embedding);
  be_.region(Backend::Region::layers);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    const size_t i = static_cast<size_t>(l);
    layer_forward(model_, w.layers[i], acts_[i], resid_[i], resid_[i + 1], batch_, seq_, 0, nullptr,
                  l);
  }
  be_.region(Backend::Region::other);
  be_.rmsnorm_fwd(lnf_, rstdf_, resid_.back(), w.final_norm,
                  RmsNormArgs{static_cast<float>(cfg.norm_eps)});
  be_.matmul(logits_, lnf_, w.head, MatmulArgs{false, true, 1.0f, 0.0f});
  be_.cross_entropy_fwd_bwd(losses_, dlogits_, logits_, targets_,
                            CrossEntropyArgs{1.0f / static_cast<float>(n * gradient_ranks_)});
}

void TrainingPass::backward(const std::function<void(int64_t from)>& ready) {
  const ModelConfig& cfg = model_.config();
  const Weights& w = model_.weights();
  const Weights& g = model_.grads();
  const int64_t hd = cfg.head_dim();
  const MatmulArgs dx{false, false, 1.0f, 0.0f};      // dX = dY · W
  const MatmulArgs dx_acc{false, false, 1.0f, 1.0f};  // dX += dY · W
  const MatmulArgs dw{true, false, 1.0f, 1.0f};       // dW += dYᵀ · X

  be_.region(Backend::Region::parameters);
  be_.fill(model_.grads_flat(), 0.0f);
  be_.region(Backend::Region::other);
  // Head and final norm. dresid starts at zero and accumulates through every rmsnorm_bwd.
  be_.matmul(dln_, dlogits_, w.head, dx);
  be_.matmul(g.head, dlogits_, lnf_, dw);
  be_.fill(dresid_, 0.0f);
  be_.rmsnorm_bwd(dresid_, g.final_norm, dln_, resid_.back(), w.final_norm, rstdf_);
  if (ready) ready(final_norm_offset_);

  be_.region(Backend::Region::layers);
  for (int64_t l = cfg.n_layers - 1; l >= 0; --l) {
    const size_t i = static_cast<size_t>(l);
    const LayerActs& a = acts_[i];
    const LayerWeights& lw = w.layers[i];
    const LayerWeights& lg = g.layers[i];
    const RopeArgs rope{0, static_cast<float>(cfg.rope_theta), cfg.max_seq};
    // MLP: dresid is d(out) = d(m); it becomes d(mid) after the norm's backward.
    be_.matmul(dh_, dresid_, lw.w_down, dx);
    be_.matmul(lg.w_down, dresid_, a.h, dw);
    be_.swiglu_bwd(dgate_up_, dh_, a.gate_up);
    be_.matmul(dln_, dgate_up_, lw.w_gate_up, dx);
    be_.matmul(lg.w_gate_up, dgate_up_, a.ln2, dw);
    model_.sum_over_shards(dln_);
    be_.rmsnorm_bwd(dresid_, lg.mlp_norm, dln_, a.mid, lw.mlp_norm, a.rstd2);
    // Attention: dresid is d(mid) = d(o); it becomes d(in).
    be_.matmul(datt_, dresid_, lw.wo, dx);
    be_.matmul(lg.wo, dresid_, a.att, dw);
    const auto h4 = [&](const Tensor& t, int64_t heads) {
      return t.reshaped({batch_, seq_, heads, hd});
    };
    be_.attention_bwd(h4(dq_, cfg.n_heads), h4(dk_, cfg.n_kv_heads), h4(dv_, cfg.n_kv_heads),
                      h4(datt_, cfg.n_heads), h4(a.q, cfg.n_heads), h4(a.k, cfg.n_kv_heads),
                      h4(a.v, cfg.n_kv_heads), h4(a.att, cfg.n_heads), a.lse, AttentionArgs{});
    be_.rope_bwd(h4(dq_lin_, cfg.n_heads), h4(dq_, cfg.n_heads), rope);
    be_.rope_bwd(h4(dk_lin_, cfg.n_kv_heads), h4(dk_, cfg.n_kv_heads), rope);
    be_.matmul(dln_, dq_lin_, lw.wq, dx);
    be_.matmul(dln_, dk_lin_, lw.wk, dx_acc);
    be_.matmul(dln_, dv_, lw.wv, dx_acc);
    be_.matmul(lg.wq, dq_lin_, a.ln1, dw);
    be_.matmul(lg.wk, dk_lin_, a.ln1, dw);
    be_.matmul(lg.wv, dv_, a.ln1, dw);
    model_.sum_over_shards(dln_);
    be_.rmsnorm_bwd(dresid_, lg.attn_norm, dln_, resid_[i], lw.attn_norm, a.rstd1);
    if (ready) ready(layer_offsets_[i]);
  }
  be_.region(Backend::Region::other);
  be_.embedding_bwd(g.embedding, dresid_.reshaped({batch_, seq_, cfg.d_model}), tokens_);
  if (ready) ready(0);
}

void TrainingPass::optimizer_step(const AdamWArgs& args, int64_t begin, int64_t end) {
  const auto range = [&](const Tensor& flat) {
    return Tensor(static_cast<char*>(flat.data) + begin * dtype_size(flat.dtype), flat.dtype,
                  {end - begin});
  };
  be_.region(Backend::Region::parameters);
  be_.adamw(range(model_.params_flat()), range(model_.grads_flat()), range(model_.m_flat()),
            range(model_.v_flat()), args);
  be_.region(Backend::Region::other);
}

void TrainingPass::refresh_weights() {
  be_.region(Backend::Region::parameters);
  model_.refresh_compute_weights();
  be_.region(Backend::Region::other);
}

void TrainingPass::optimizer_step(const AdamWArgs& args) {
  be_.region(Backend::Region::parameters);
  be_.adamw(model_.params_flat(), model_.grads_flat(), model_.m_flat(), model_.v_flat(), args);
  model_.refresh_compute_weights();
  be_.region(Backend::Region::other);
}

double TrainingPass::mean_loss() {
  std::vector<float> host(static_cast<size_t>(losses_.numel()));
  be_.copy_to_host(host.data(), losses_.data, losses_.bytes());
  double sum = 0;
  for (float x : host) sum += x;
  return sum / static_cast<double>(host.size());
}

// ---- inference ------------------------------------------------------------------------------

InferencePass::InferencePass(Model& model, int64_t batch, int64_t max_new_tokens, int64_t capacity)
    : model_(model),
      be_(model.backend()),
      batch_(batch),
      max_rows_(batch * max_new_tokens),
      store_(model.backend()) {
  const ModelConfig& cfg = model.config();
  if (capacity > cfg.max_seq) throw std::invalid_argument("cache longer than the model's max_seq");
  const DType dt = model.dtype();
  scratch_ = store_.raw(layer_block_bytes(layer_activation_specs(cfg, batch, max_new_tokens, dt)));
  resid_a_ = store_.make(dt, {max_rows_, cfg.d_model});
  resid_b_ = store_.make(dt, {max_rows_, cfg.d_model});
  lnf_ = store_.make(dt, {max_rows_, cfg.d_model});
  rstdf_ = store_.make(DType::f32, {max_rows_});
  logits_ = store_.make(dt, {max_rows_, cfg.vocab});
  cache_.capacity = capacity;
  // Every layer's K and V in one block: a CPU backend puts a block of 2 MiB or more on huge
  // pages, where one layer's cache alone (llama-350m: 160 KiB) would take 4 KiB pages.
  const std::vector<int64_t> dims{batch, capacity, cfg.n_kv_heads, cfg.head_dim()};
  const size_t one = static_cast<size_t>(bytes_of(model.dtype(), dims));
  char* block = static_cast<char*>(store_.raw(one * 2 * static_cast<size_t>(cfg.n_layers)));
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    cache_.k.push_back(shaped(block + one * static_cast<size_t>(2 * l), model.dtype(), dims));
    cache_.v.push_back(shaped(block + one * static_cast<size_t>(2 * l + 1), model.dtype(), dims));
  }
}

// The table for these rows laid out from the start of the scratch block (which the largest
// call's table fills), so that fewer rows keep the table's neighbours adjacent.
LayerActs InferencePass::views(int64_t rows, int64_t seq) const {
  return layer_acts_at(scratch_,
                       layer_activation_specs(model_.config(), rows / seq, seq, model_.dtype()));
}

Tensor InferencePass::forward(const Tensor& tokens, int64_t pos) {
  const ModelConfig& cfg = model_.config();
  const Weights& w = model_.weights();
  const int64_t batch = tokens.dim(0), seq = tokens.dim(1), rows = batch * seq;
  if (batch != batch_ || rows > max_rows_ || pos + seq > cache_.capacity)
    throw std::invalid_argument("InferencePass::forward: " + tokens.shape_string() + " at pos " +
                                std::to_string(pos) + " exceeds the graph's sizes");
  const LayerActs a = views(rows, seq);
  const DType dt = model_.dtype();
  Tensor x(resid_a_.data, dt, {rows, cfg.d_model});
  Tensor y(resid_b_.data, dt, {rows, cfg.d_model});
  be_.embedding_fwd(x.reshaped({batch, seq, cfg.d_model}), tokens, w.embedding);
  be_.region(Backend::Region::layers);
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    layer_forward(model_, w.layers[static_cast<size_t>(l)], a, x, y, batch, seq, pos, &cache_, l);
    std::swap(x, y);
  }
  be_.region(Backend::Region::other);
  const Tensor lnf(lnf_.data, dt, {rows, cfg.d_model});
  const Tensor rstdf(rstdf_.data, DType::f32, {rows});
  const Tensor logits(logits_.data, dt, {rows, cfg.vocab});
  be_.rmsnorm_fwd(lnf, rstdf, x, w.final_norm, RmsNormArgs{static_cast<float>(cfg.norm_eps)});
  be_.matmul(logits, lnf, w.head, MatmulArgs{false, true, 1.0f, 0.0f});
  return logits;
}

}  // namespace capbench
