// Sequence states to and from files (engine/state_file.h), each on a worker
// thread: a 9B state is ~139 MiB, far too much I/O for the event loop.
#pragma once
#include <napi.h>

#include <memory>

#include "addon/handles.h"

namespace nemotron_addon {

// sequence.saveState(path, contextSize, meta) -> Promise<number> (the file's bytes)
Napi::Value save_state(const Napi::CallbackInfo& info, std::shared_ptr<SequenceBox> box);
// model.loadSequence(path, contextSize) -> Promise<NativeSequence> (contextSize 0: the saved one)
Napi::Value load_sequence_state(const Napi::CallbackInfo& info, std::shared_ptr<nemotron::Engine> engine);
// inspectStateFile(path) -> Promise<{ model, pattern, length, contextSize, meta, fileBytes }>
Napi::Value inspect_state_file(const Napi::CallbackInfo& info);

}  // namespace nemotron_addon
