#pragma once

// The dashboard's static files (src/web/assets/), compiled into the binary. Served by relay/ under
// /ui/ (see relay/dashboard_routes.cc); this module only holds the bytes.

#include <string_view>
#include <vector>

namespace magnetar::web {

struct Asset {
  std::string_view name;          // file name: "dashboard.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
};

const std::vector<Asset>& Assets();

// The asset called `name`, or null.
const Asset* FindAsset(std::string_view name);

}  // namespace magnetar::web
