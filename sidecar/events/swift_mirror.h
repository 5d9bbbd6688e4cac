// SwiftMirror: uploads every recorded event as its own object into `swift_event_container`, and
// never loses one (issue 6; Swift's API: research/api-contracts.md §3).
//
// - The outbox is the set of records the journal has written but Swift has not confirmed. It
//   survives restarts as a cursor (the highest seq below which every record is confirmed), kept by
//   io::EventJournal; this class reports each advance of it.
// - Each object is PUT with `If-None-Match: *`: 201 means created, 412 means it is already there
//   (an upload whose answer was lost, or a re-upload after a crash), which is success too. So a
//   retry can never create a second copy, and an object is never overwritten.
// - The container is looked at once (HEAD) and created when missing (PUT: 201, or 202 when someone
//   created it meanwhile); an object PUT answered 404 (the container was deleted) creates it again.
// - Up to `concurrency` uploads run at once, oldest first. Failures (Swift or Keystone down, 5xx,
//   a refused connection, a token that cannot be renewed, 403) pause the uploads with exponential
//   back-off and equal jitter, on top of the session's own retries; the session re-authenticates
//   on 401. Uploads go on as long as the process runs: no record is ever dropped.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "base/backoff.h"
#include "events/record.h"
#include "openstack/session.h"
#include "uv/timer.h"

namespace unshelver::providers {

struct MirrorSettings {
  std::string container;
  std::string prefix;
  int concurrency = 4;
  core::BackoffPolicy backoff{std::chrono::milliseconds(1'000), std::chrono::milliseconds(60'000)};
};

struct MirrorStats {
  std::uint64_t uploaded = 0;         // objects created (201)
  std::uint64_t already_present = 0;  // 412: confirmed without a new copy
  std::uint64_t upload_errors = 0;    // failed attempts (each pauses the uploads)
  std::uint64_t containers_created = 0;
  std::string last_error;  // kept after recovery; see failing
  std::optional<core::TimePoint> last_error_at;
  std::optional<core::TimePoint> last_upload_at;
  bool failing = false;  // the last attempt failed
};

class SwiftMirror {
 public:
  using ProgressCallback = std::function<void(std::uint64_t uploaded_through)>;

  // `on_change` runs after every answer that changed what stats() or outbox() show.
  SwiftMirror(uv_loop_t* loop, OpenStackSession& session, MirrorSettings settings,
              std::uint64_t uploaded_through, ProgressCallback on_progress, std::function<void()> on_change);
  ~SwiftMirror();
  SwiftMirror(const SwiftMirror&) = delete;
  SwiftMirror& operator=(const SwiftMirror&) = delete;

  // A record that is written locally; records arrive in seq order.
  void enqueue(const core::EventRecord& record);
  // Cancels what is in flight; those records stay unconfirmed and go out after the next start.
  void close();

  std::size_t outbox() const { return outbox_.size(); }
  std::uint64_t uploaded_through() const { return uploaded_through_; }
  const MirrorStats& stats() const { return stats_; }
  const MirrorSettings& settings() const { return settings_; }

 private:
  enum class Step { kWaiting, kSending, kConfirmed };
  struct Item {
    std::string name;
    std::string body;
    Step step = Step::kWaiting;
    OpenStackSession::RequestId request = 0;
  };

  void pump();
  void check_container();
  void create_container();
  void send(std::uint64_t seq, Item& item);
  void on_uploaded(std::uint64_t seq, const io::ClientResponse& response);
  void failed(const std::string& message);
  void succeeded();
  void advance();
  OpenStackSession::RequestId call(std::string method, std::string path, std::string body,
                                   io::HeaderList headers, std::function<void(io::ClientResponse)> on_done);

  OpenStackSession& session_;
  MirrorSettings settings_;
  std::string container_path_;  // "/" + the encoded container name, on the account's endpoint
  ProgressCallback on_progress_;
  std::function<void()> on_change_;
  std::map<std::uint64_t, Item> outbox_;
  std::uint64_t uploaded_through_;
  int sending_ = 0;
  bool container_ready_ = false;
  OpenStackSession::RequestId container_request_ = 0;
  int consecutive_failures_ = 0;
  io::Timer pause_timer_;
  std::mt19937 random_;
  bool closed_ = false;
  MirrorStats stats_;
};

}  // namespace unshelver::providers
