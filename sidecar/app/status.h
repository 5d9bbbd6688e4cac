// The /api/status document's backends, written from their typed BackendView (the subsystems
// write their own parts: write_status next to each). Absent values are JSON null, not "" or 0.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backend/driver.h"
#include "base/json_values.h"
#include "base/time_format.h"
#include "caddy/router.h"
#include "web/controller.h"
#include "web/page_model.h"

namespace unshelver::app {

// A backend as the driver and Caddy's routing (`router`, null when not managed) say it is.
web::BackendView backend_view(const BackendDriver& driver, const CaddyRouter* router);

// One entry of the document's "backends" (written in the web layer, whose pages cache it).
using web::backend_json;

}  // namespace unshelver::app
