// What the JS wrappers hold. Workers keep shared_ptr copies, so an object
// disposed from JS while work is queued is freed only when that work is done.
#pragma once
#include <memory>

#include "engine/engine.h"

namespace nemotron_addon {

struct SequenceBox {
  std::shared_ptr<nemotron::Engine> engine;
  int64_t context_size = 0;
  // Created on first use, on a worker thread: allocating and zeroing the state
  // of a large model takes long enough that it must not run on the event loop.
  std::unique_ptr<nemotron::SequenceState> state;

  nemotron::SequenceState& get() {
    if (!state) state = engine->create_sequence(context_size);
    return *state;
  }
};

}  // namespace nemotron_addon
