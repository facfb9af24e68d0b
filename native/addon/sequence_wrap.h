// JS object for one sequence (conversation state). Methods mirror lib/sequence.ts:
// prefill(tokens, allLogits) / decode(token) / clone([contextSize]) / reset() /
// saveState(path, contextSize, meta) return promises;
// dispose() releases the state.
#pragma once
#include <napi.h>

#include "addon/handles.h"

namespace nemotron_addon {

class SequenceWrap : public Napi::ObjectWrap<SequenceWrap> {
 public:
  static void init(Napi::Env env);
  static Napi::Object create(Napi::Env env, std::shared_ptr<SequenceBox> box);
  // The live box behind a JS sequence object (throws a JS error when it is not one, or disposed).
  static std::shared_ptr<SequenceBox> unwrap_box(const Napi::Value& v);
  explicit SequenceWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<SequenceBox> live(Napi::Env env) const;
  Napi::Value prefill(const Napi::CallbackInfo& info);
  Napi::Value decode(const Napi::CallbackInfo& info);
  Napi::Value clone(const Napi::CallbackInfo& info);
  Napi::Value reset(const Napi::CallbackInfo& info);
  Napi::Value save_state(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<SequenceBox> box_;
};

}  // namespace nemotron_addon
