// Base class for work that runs off the event loop (libuv pool) and settles a
// promise: subclasses implement run() (worker thread, may throw) and
// resolve_value() (JS thread). Native exceptions reject the promise with a JS
// Error carrying `code`; nothing escapes to crash the process.
#pragma once
#include <napi.h>

#include <vector>

#include "addon/js_errors.h"

namespace nemotron_addon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual void run() = 0;
  virtual Napi::Value resolve_value(Napi::Env env) { return env.Undefined(); }

 private:
  void Execute() final {
    try {
      run();
    } catch (...) {
      classify(std::current_exception(), &code_, &message_);
      SetError(message_);
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      deferred_.Resolve(resolve_value(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      std::string code, message;
      classify(std::current_exception(), &code, &message);
      deferred_.Reject(make_error(env, code, message).Value());
    }
  }
  void OnError(const Napi::Error&) final {
    Napi::HandleScope scope(Env());
    deferred_.Reject(make_error(Env(), code_, message_).Value());
  }

  Napi::Promise::Deferred deferred_;
  std::string code_, message_;
};

// Starts a PromiseWorker subclass and returns its promise (the worker deletes
// itself when done, as Napi::AsyncWorker does).
template <typename W, typename... Args>
Napi::Value queue_worker(Napi::Env env, Args&&... args) {
  W* w = new W(env, std::forward<Args>(args)...);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// Copies a JS Int32Array / number[] of token ids (validated as integers by the
// TS layer; re-checked here so a direct caller cannot pass garbage).
std::vector<int32_t> read_tokens(const Napi::Value& v);

// Builds a Float32Array holding a copy of `data`.
Napi::Float32Array to_float32_array(Napi::Env env, const std::vector<float>& data);

}  // namespace nemotron_addon
