#include "events/swift_mirror.h"

#include <spdlog/spdlog.h>

#include "base/text.h"
#include "openstack/keystone.h"

namespace unshelver::providers {

namespace {
constexpr std::string_view kObjectStore = "object-store";

// Swift object names may hold '/'; each segment is encoded on its own so the slashes stay
// (contract §3: the name is the rest of the path after the container).
std::string encode_object_path(std::string_view name) {
  std::string out;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = name.find('/', start);
    out += core::percent_encode(name.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

std::string describe(const io::ClientResponse& response) {
  if (!response.transport_ok()) return response.error;
  const std::string message = core::openstack::error_message_of(response.body);
  return "Swift answered " + std::to_string(response.status) + (message.empty() ? "" : ": " + message);
}
}  // namespace

SwiftMirror::SwiftMirror(uv_loop_t* loop, OpenStackSession& session, MirrorSettings settings,
                         std::uint64_t uploaded_through, ProgressCallback on_progress,
                         std::function<void()> on_change)
    : session_(session),
      settings_(std::move(settings)),
      container_path_("/" + core::percent_encode(settings_.container)),
      on_progress_(std::move(on_progress)),
      on_change_(std::move(on_change)),
      uploaded_through_(uploaded_through),
      pause_timer_(loop),
      random_(std::random_device{}()) {
  settings_.concurrency = std::max(1, settings_.concurrency);
}

SwiftMirror::~SwiftMirror() {
  close();
}

void SwiftMirror::close() {
  if (closed_) return;
  closed_ = true;
  pause_timer_.stop();
  if (container_request_ != 0) session_.cancel(container_request_);
  for (auto& [seq, item] : outbox_) {
    if (item.step == Step::kSending) session_.cancel(item.request);
  }
}

void SwiftMirror::enqueue(const core::EventRecord& record) {
  if (closed_ || record.seq <= uploaded_through_ || outbox_.contains(record.seq)) return;
  Item item;
  item.name = core::swift_object_name(settings_.prefix, record);
  item.body = core::to_json_line(record);
  outbox_.emplace(record.seq, std::move(item));
  pump();
}

OpenStackSession::RequestId SwiftMirror::call(std::string method, std::string path, std::string body,
                                              io::HeaderList headers,
                                              std::function<void(io::ClientResponse)> on_done) {
  ApiRequest request;
  request.service_type = std::string(kObjectStore);
  request.method = std::move(method);
  request.path = std::move(path);
  request.body = std::move(body);
  request.headers = std::move(headers);
  return session_.request(std::move(request), std::move(on_done));
}

void SwiftMirror::pump() {
  if (closed_ || pause_timer_.active() || outbox_.empty()) return;
  if (!container_ready_) {
    if (container_request_ == 0) check_container();
    return;
  }
  for (auto& [seq, item] : outbox_) {
    if (sending_ >= settings_.concurrency) break;
    if (item.step == Step::kWaiting) send(seq, item);
  }
}

void SwiftMirror::check_container() {
  container_request_ = call("HEAD", container_path_, "", {}, [this](const io::ClientResponse& response) {
    container_request_ = 0;
    if (response.is_2xx()) {
      container_ready_ = true;
      pump();
    } else if (response.transport_ok() && response.status == 404) {
      create_container();
    } else {
      failed("cannot look at container " + settings_.container + ": " + describe(response));
    }
  });
}

void SwiftMirror::create_container() {
  container_request_ = call("PUT", container_path_, "", {}, [this](const io::ClientResponse& response) {
    container_request_ = 0;
    // 201 Created, or 202 Accepted when it exists already (contract §3).
    if (response.is_2xx()) {
      ++stats_.containers_created;
      spdlog::info("events: created Swift container {}", settings_.container);
      container_ready_ = true;
      if (on_change_) on_change_();
      pump();
    } else {
      failed("cannot create container " + settings_.container + ": " + describe(response));
    }
  });
}

void SwiftMirror::send(std::uint64_t seq, Item& item) {
  item.step = Step::kSending;
  ++sending_;
  io::HeaderList headers{{"If-None-Match", "*"}};
  item.request =
      call("PUT", container_path_ + "/" + encode_object_path(item.name), item.body, std::move(headers),
           [this, seq](const io::ClientResponse& response) { on_uploaded(seq, response); });
}

void SwiftMirror::on_uploaded(std::uint64_t seq, const io::ClientResponse& response) {
  --sending_;
  auto found = outbox_.find(seq);
  if (found == outbox_.end()) return;
  Item& item = found->second;
  if (response.transport_ok() && (response.status == 201 || response.status == 412)) {
    item.step = Step::kConfirmed;
    ++(response.status == 201 ? stats_.uploaded : stats_.already_present);
    stats_.last_upload_at = std::chrono::system_clock::now();
    succeeded();
    advance();
    if (on_change_) on_change_();
    pump();
    return;
  }
  item.step = Step::kWaiting;
  if (response.transport_ok() && response.status == 404) {
    // The container is gone: create it again, then send everything that waits.
    container_ready_ = false;
    spdlog::warn("events: Swift container {} is missing; creating it again", settings_.container);
    pump();
    return;
  }
  failed("cannot upload " + item.name + ": " + describe(response));
}

void SwiftMirror::failed(const std::string& message) {
  ++stats_.upload_errors;
  ++consecutive_failures_;
  stats_.failing = true;
  stats_.last_error_at = std::chrono::system_clock::now();
  // Loud on the first failure and whenever the reason changes; quieter while it lasts.
  if (message != stats_.last_error || consecutive_failures_ % 20 == 1) {
    spdlog::error("events: {}; {} event(s) wait in the outbox, trying again with back-off", message,
                  outbox_.size());
  }
  stats_.last_error = message;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = core::backoff_delay(settings_.backoff, consecutive_failures_, unit(random_));
  pause_timer_.start(delay, [this] { pump(); });
  if (on_change_) on_change_();
}

void SwiftMirror::succeeded() {
  if (consecutive_failures_ > 0) {
    spdlog::info("events: Swift uploads work again ({} event(s) in the outbox)", outbox_.size());
  }
  consecutive_failures_ = 0;
  stats_.failing = false;
}

void SwiftMirror::advance() {
  const std::uint64_t before = uploaded_through_;
  while (!outbox_.empty() && outbox_.begin()->second.step == Step::kConfirmed) {
    uploaded_through_ = outbox_.begin()->first;
    outbox_.erase(outbox_.begin());
  }
  if (uploaded_through_ != before && on_progress_) on_progress_(uploaded_through_);
}

}  // namespace unshelver::providers
