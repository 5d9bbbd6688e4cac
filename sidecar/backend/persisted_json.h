// The JSON form of what a backend keeps across restarts (core::PersistedBackend) and of what a
// leader publishes for the controllers that follow it (core::BackendSnapshot): one encoding for
// the state file (backend/state_store.h) and for etcd (ha/).
#pragma once

#include <nlohmann/json.hpp>

#include "backend/reconciler.h"
#include "base/result.h"

namespace unshelver::core {

nlohmann::json persisted_to_json(const PersistedBackend& backend);
// Never throws: a missing or mistyped field is an Error. Holds with an unknown reason are skipped.
Result<PersistedBackend> persisted_from_json(const nlohmann::json& in);

// The snapshot adds what the pages show to the persisted fields, in the same object.
nlohmann::json snapshot_to_json(const BackendSnapshot& snapshot);
Result<BackendSnapshot> snapshot_from_json(const nlohmann::json& in);

}  // namespace unshelver::core
