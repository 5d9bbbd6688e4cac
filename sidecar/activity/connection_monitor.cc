// ConnectionMonitor: one netlink inet_diag dump of both address families, every `interval`,
// while there is an upstream to watch.
//
// The kernel answers a dump by walking its whole established-socket hash table (sized from RAM:
// 262,144 buckets on the 2-core benchmark machine), whatever the filter; the filter only saves copying
// the sockets that do not match. That walk is the cost of a sample, so the timer is stopped
// while the set of upstreams is empty (the activity monitor watches only backends whose VM may
// serve), and a change of the set costs nothing until the next sample, which parses it and builds
// the filter once.
//
// Flow of one sample:
//   1. A dump request (SOCK_DIAG_BY_FAMILY with a struct inet_diag_req_v2, linux/sock_diag.h,
//      or the legacy TCPDIAG_GETSOCK with a struct inet_diag_req; linux/inet_diag.h) asks for
//      established TCP sockets, with INET_DIAG_INFO so that each
//      answer carries the socket's struct tcp_info (linux/tcp.h). An INET_DIAG_REQ_BYTECODE filter
//      makes the kernel keep only sockets whose destination is one of the upstreams, so a busy
//      host with thousands of client connections costs no more than a quiet one.
//   2. Both families are dumped: a Go program such as Caddy may hold an AF_INET6 socket to an
//      IPv4-mapped address (::ffff:10.0.0.5), which the kernel lists only in the AF_INET6 table.
//      Where the kernel takes the legacy TCPDIAG_GETSOCK request, one dump covers both (one walk
//      of the table instead of two); otherwise one SOCK_DIAG_BY_FAMILY dump per family. Answers
//      are matched to upstreams again in user space, the authority on what is reported (the
//      kernel filter is only an optimisation).
//   3. Sockets owned by this process (the health prober's, whose quick probes are not Caddy's
//      traffic) are dropped by inode: /proc/self/fd links sockets as "socket:[inode]", the same
//      number the kernel reports as idiag_inode.
//
// The dump is done synchronously on the loop thread. That is acceptable because the kernel
// answers from memory: it walks its socket hash tables and copies a few hundred bytes per
// matching socket into the netlink socket's queue, with no disk or network wait. The first part
// of the answer is queued during sendto() and each recvmsg() queues the next part (the kernel's
// netlink_dump runs from netlink_recvmsg), so the non-blocking socket has data ready at every
// step. The receive loop is bounded all the same, and a dump that stalls is abandoned.
#include "activity/connection_monitor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "base/text.h"
#include "base/url.h"
#include "uv/timer.h"

namespace unshelver::io {

namespace {

// idiag_states is a bit mask indexed by the kernel's TCP states (include/net/tcp_states.h, which
// is not exported to user space; glibc's netinet/tcp.h carries the same enum). struct tcp_info
// also comes from netinet/tcp.h, glibc's copy of linux/tcp.h: uv.h already includes it, and the
// two headers cannot be included together.
constexpr int kTcpEstablished = TCP_ESTABLISHED;
// A receive buffer larger than any single netlink datagram: dumps are cut into skbs of at most
// 32 KiB (netlink_dump's allocation), and a datagram larger than the buffer would be truncated.
constexpr std::size_t kReceiveBufferBytes = std::size_t{64} * 1024;
// Bounds on one dump: each receive carries dozens of sockets, so this is far beyond any real
// table, and a dump that has nothing queued for this long is stuck and abandoned.
constexpr int kMaxReceives = 4096;
constexpr int kStallTimeoutMs = 200;
// Offsets in bytecode jumps are 16 bits wide (struct inet_diag_bc_op's `no`); a filter this large
// (about 2000 upstreams) would not fit, and user-space filtering alone is used instead.
constexpr std::size_t kMaxBytecodeBytes = 60000;

struct Upstream {
  std::string text;
  int family = AF_INET;                    // AF_INET6 only for true IPv6 addresses (never v4-mapped).
  std::array<std::uint8_t, 16> address{};  // Network order; an IPv4 address uses the first 4 bytes.
  std::uint16_t port = 0;

  std::size_t address_bytes() const { return family == AF_INET ? 4 : 16; }
};

// The endpoint as bytes (family, port, address), for finding an upstream or a socket's
// destination in a hash map.
std::string endpoint_key(int family, std::uint16_t port, const std::array<std::uint8_t, 16>& address) {
  std::string key;
  key.reserve(3 + address.size());
  key.push_back(static_cast<char>(family));
  key.push_back(static_cast<char>(port >> 8));
  key.push_back(static_cast<char>(port & 0xff));
  key.append(reinterpret_cast<const char*>(address.data()), address.size());
  return key;
}

// One established socket from a dump, with its destination normalised: an IPv4-mapped IPv6
// destination is rewritten as the IPv4 address it stands for.
struct DiagEntry {
  int family = AF_INET;
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;
  std::uint64_t inode = 0;
  std::uint32_t since_send_ms = 0;
  std::uint32_t since_recv_ms = 0;
};

using core::errno_text;

bool is_v4_mapped(const std::array<std::uint8_t, 16>& address) {
  static constexpr std::array<std::uint8_t, 12> kPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(kPrefix.begin(), kPrefix.end(), address.begin());
}

// Turns an IPv4-mapped IPv6 address into the IPv4 address, so both spellings compare equal.
void normalise_v4_mapped(int& family, std::array<std::uint8_t, 16>& address) {
  if (family != AF_INET6 || !is_v4_mapped(address)) return;
  std::array<std::uint8_t, 16> v4{};
  std::copy_n(address.begin() + 12, 4, v4.begin());
  family = AF_INET;
  address = v4;
}

// "10.0.0.5:8080" or "[fd00::5]:8080". Host names are not accepted: the kernel reports addresses.
Result<Upstream> parse_upstream(const std::string& text) {
  Upstream upstream;
  upstream.text = text;
  const Result<core::Authority> authority = core::parse_authority(text);
  if (!authority.ok() || authority->host.empty() || !authority->port) {
    return Error{"expected IPv4:port or [IPv6]:port in upstream '" + text + "'"};
  }
  if (*authority->port == 0) return Error{"bad port in upstream '" + text + "'"};
  upstream.family = authority->bracketed ? AF_INET6 : AF_INET;
  if (inet_pton(upstream.family, authority->host.c_str(), upstream.address.data()) != 1) {
    return Error{"not an IP address in upstream '" + text + "' (host names are not resolved)"};
  }
  upstream.port = static_cast<std::uint16_t>(*authority->port);
  normalise_v4_mapped(upstream.family, upstream.address);
  return upstream;
}

// Grows the buffer first and copies into the new tail: GCC 12 at -O1 reports a false
// -Wstringop-overflow for vector::insert of a byte range here (it loses track of the capacity).
template <typename T>
void append_bytes(std::vector<std::uint8_t>& out, const T& value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

// The inet_diag bytecode for "destination is one of these endpoints", in the layout `ss` builds
// for an OR of conditions. The kernel's interpreter (inet_diag_bc_run in net/ipv4/inet_diag.c)
// walks forward: after an op it advances by `yes` bytes if the condition held, else by `no`; the
// socket is accepted when the walk ends exactly at the end of the program and rejected when it
// jumps 4 bytes beyond. inet_diag_bc_audit checks that every jump lands on an op boundary of the
// `yes` chain, which is why each alternative is followed by a JMP (always "no") over the rest:
//
//   D_COND(a) yes→next no→past-JMP | JMP no→end | D_COND(b) ... | D_COND(z) yes→end no→end+4
//
// A D_COND with a family of AF_INET also matches an AF_INET6 socket whose destination is the
// IPv4-mapped form of the address (the kernel handles that case explicitly).
std::vector<std::uint8_t> build_filter(const std::vector<Upstream>& upstreams) {
  std::vector<std::vector<std::uint8_t>> conditions;
  std::size_t total = 0;
  for (const Upstream& upstream : upstreams) {
    std::vector<std::uint8_t> condition;
    const std::size_t size = sizeof(inet_diag_bc_op) + sizeof(inet_diag_hostcond) + upstream.address_bytes();
    inet_diag_bc_op op{};
    op.code = INET_DIAG_BC_D_COND;
    op.yes = static_cast<unsigned char>(size);
    op.no = static_cast<unsigned short>(size + 4);
    inet_diag_hostcond host{};
    host.family = static_cast<__u8>(upstream.family);
    host.prefix_len = static_cast<__u8>(upstream.address_bytes() * 8);
    host.port = upstream.port;  // Compared with the destination port in host order.
    append_bytes(condition, op);
    append_bytes(condition, host);
    condition.insert(condition.end(), upstream.address.begin(),
                     upstream.address.begin() + static_cast<std::ptrdiff_t>(upstream.address_bytes()));
    total += condition.size() + sizeof(inet_diag_bc_op);
    conditions.push_back(std::move(condition));
  }
  if (conditions.empty() || total > kMaxBytecodeBytes) return {};

  // Each JMP skips the whole rest of the program (the last condition has no JMP after it), so the
  // program is built in one pass from its final length.
  const std::size_t program_length = total - sizeof(inet_diag_bc_op);
  std::vector<std::uint8_t> program;
  program.reserve(program_length);
  for (std::size_t i = 0; i < conditions.size(); ++i) {
    program.insert(program.end(), conditions[i].begin(), conditions[i].end());
    if (i + 1 == conditions.size()) break;
    const std::size_t rest = program_length - program.size() - sizeof(inet_diag_bc_op);
    inet_diag_bc_op jump{};
    jump.code = INET_DIAG_BC_JMP;
    jump.yes = sizeof(inet_diag_bc_op);
    jump.no = static_cast<unsigned short>(sizeof(inet_diag_bc_op) + rest);
    append_bytes(program, jump);
  }
  return program;
}

// A program that rejects every socket: the JMP is never "yes", and its `no` jumps 4 bytes past
// the end. Used by start() to learn whether the kernel answers at all, at no cost.
std::vector<std::uint8_t> reject_all_filter() {
  std::vector<std::uint8_t> program;
  inet_diag_bc_op jump{};
  jump.code = INET_DIAG_BC_JMP;
  jump.yes = sizeof(inet_diag_bc_op);
  jump.no = sizeof(inet_diag_bc_op) * 2;
  append_bytes(program, jump);
  return program;
}

// The inodes of this process's sockets, from the links in /proc/self/fd ("socket:[12345]"), read
// through `directory`, which stays open between samples: listing it needs no new descriptor, so
// it still works when a flood of connections has taken every other one.
std::unordered_set<std::uint64_t> own_socket_inodes(DIR* directory) {
  std::unordered_set<std::uint64_t> inodes;
  rewinddir(directory);  // procfs lists the descriptors open now at each pass.
  constexpr std::string_view kPrefix = "socket:[";
  // readdir is safe here: the stream is this function's own (glibc's readdir is thread-safe across
  // streams; readdir_r is deprecated).
  while (dirent* entry = readdir(directory)) {  // NOLINT(concurrency-mt-unsafe)
    if (entry->d_name[0] == '.') continue;
    std::array<char, 64> target{};
    ssize_t length = readlinkat(dirfd(directory), entry->d_name, target.data(), target.size() - 1);
    if (length <= 0) continue;  // Closed meanwhile (including the directory's own fd): skip.
    std::string_view link(target.data(), static_cast<std::size_t>(length));
    if (!link.starts_with(kPrefix) || !link.ends_with(']')) continue;
    std::uint64_t inode = 0;
    const char* first = link.data() + kPrefix.size();
    const char* last = link.data() + link.size() - 1;
    auto [end, error] = std::from_chars(first, last, inode);
    if (error == std::errc() && end == last) inodes.insert(inode);
  }
  return inodes;
}

// What one sample looks for: the parsed upstreams (in the caller's order, duplicates kept), the
// kernel filter over the distinct endpoints, and where each endpoint's sockets go.
struct Watch {
  std::vector<Upstream> upstreams;
  std::vector<std::uint8_t> filter;
  std::unordered_map<std::string, std::vector<std::size_t>> indices_by_endpoint;
};

// Linear in the number of upstreams: a thousand backends at start-up are one pass.
Watch build_watch(const std::vector<std::string>& texts) {
  Watch watch;
  std::vector<Upstream> distinct;
  for (const std::string& text : texts) {
    auto upstream = parse_upstream(text);
    if (!upstream) {
      spdlog::warn("connection monitor: {}; in-flight requests to it are not seen", upstream.error().message);
      continue;
    }
    auto [entry, added] = watch.indices_by_endpoint.try_emplace(
        endpoint_key(upstream->family, upstream->port, upstream->address));
    entry->second.push_back(watch.upstreams.size());
    // The kernel filter needs each endpoint once; the callback still gets every upstream string.
    if (added) distinct.push_back(*upstream);
    watch.upstreams.push_back(std::move(*upstream));
  }
  watch.filter = build_filter(distinct);
  return watch;
}

}  // namespace

struct ConnectionMonitor::Impl {
  Impl(uv_loop_t* loop, std::chrono::milliseconds interval, SampleCallback on_sample)
      : loop_(loop), interval_(interval), on_sample_(std::move(on_sample)) {}
  ~Impl() { close(); }

  Status open_socket();
  void close_socket();
  void close();
  void on_timer();
  // Dumps both families with `filter` and appends the entries to `out`: in one request when
  // single_dump_, else one per family.
  Status dump(const std::vector<std::uint8_t>& filter, std::vector<DiagEntry>& out);
  // One dump request: the legacy TCPDIAG_GETSOCK for both families at once (family AF_UNSPEC),
  // or SOCK_DIAG_BY_FAMILY for one.
  Status dump_family(std::uint8_t family, const std::vector<std::uint8_t>& filter,
                     std::vector<DiagEntry>& out);
  // The established connections to each of `watch`'s upstreams, in the same order, without this
  // process's own sockets.
  Result<std::vector<std::vector<core::ConnectionSample>>> sample(const Watch& watch);
  // Sampling runs while there is an upstream to watch, and only then: an idle host costs nothing.
  void arm_or_disarm();

  uv_loop_t* loop_;
  std::chrono::milliseconds interval_;
  SampleCallback on_sample_;
  // The upstreams as last set; parsed into `watch_` (with the kernel filter) at the next sample,
  // so a burst of changes (every backend's first report at start-up) costs one build.
  std::vector<std::string> upstream_texts_;
  bool watch_stale_ = false;
  Watch watch_;
  bool started_ = false;  // start() succeeded and close() was not called
  // The kernel answered the legacy request that dumps both families in one walk (start()).
  bool single_dump_ = false;
  std::uint64_t kernel_sockets_ = 0;
  int fd_ = -1;
  std::uint32_t sequence_ = 0;
  std::vector<std::uint8_t> buffer_;
  std::unique_ptr<Timer> timer_;
  bool failing_ = false;  // The last timed sample failed (logged once per outage).
  bool warned_no_proc_ = false;
  // /proc/self/fd, kept open (see own_socket_inodes); null until it could be opened.
  DIR* fd_directory_ = nullptr;
  // Cleared by the destructor, so that a sample loop can tell that a callback destroyed us.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

Status ConnectionMonitor::Impl::open_socket() {
  if (fd_ >= 0) return ok_status();
  // NETLINK_SOCK_DIAG needs no privilege for inet_diag dumps; it fails with EAFNOSUPPORT or
  // EPROTONOSUPPORT where netlink or sock_diag is missing, and with EPERM or EACCES under
  // sandboxes (seccomp, some container runtimes).
  int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return Error{"netlink sock_diag socket: " + errno_text(errno)};
  fd_ = fd;
  buffer_.resize(kReceiveBufferBytes);
  return ok_status();
}

void ConnectionMonitor::Impl::close_socket() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
}

void ConnectionMonitor::Impl::close() {
  started_ = false;
  timer_.reset();  // The Timer frees its handle through uv_close; the loop finishes it.
  close_socket();
  if (fd_directory_ != nullptr) closedir(fd_directory_);
  fd_directory_ = nullptr;
}

Status ConnectionMonitor::Impl::dump(const std::vector<std::uint8_t>& filter, std::vector<DiagEntry>& out) {
  if (Status status = open_socket(); !status) return status;
  const std::vector<std::uint8_t> families =
      single_dump_ ? std::vector<std::uint8_t>{AF_UNSPEC} : std::vector<std::uint8_t>{AF_INET, AF_INET6};
  for (std::uint8_t family : families) {
    Status status = dump_family(family, filter, out);
    if (!status) {
      // A dump abandoned halfway leaves its remaining messages queued: start the next one on a
      // fresh socket rather than sort them out.
      close_socket();
      return status;
    }
  }
  return ok_status();
}

Status ConnectionMonitor::Impl::dump_family(std::uint8_t family, const std::vector<std::uint8_t>& filter,
                                            std::vector<DiagEntry>& out) {
  // The request: nlmsghdr, the request structure, then the bytecode as an INET_DIAG_REQ_BYTECODE
  // attribute (the kernel finds it with nlmsg_find_attr after the request structure). The
  // legacy struct inet_diag_req under TCPDIAG_GETSOCK dumps with the family AF_UNSPEC
  // (inet_diag_dump_compat in net/ipv4/inet_diag.c), so one walk of the socket table, the cost
  // of a dump, finds the sockets of both families; the answers are the same inet_diag_msg.
  const std::uint32_t sequence = ++sequence_;
  nlmsghdr header{};
  header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  header.nlmsg_seq = sequence;
  std::vector<std::uint8_t> message;
  message.resize(NLMSG_LENGTH(0));
  if (family == AF_UNSPEC) {
    inet_diag_req request{};
    request.idiag_family = AF_INET;  // Not used by a dump.
    request.idiag_ext = 1U << (INET_DIAG_INFO - 1);
    request.idiag_states = 1U << kTcpEstablished;
    header.nlmsg_type = TCPDIAG_GETSOCK;
    append_bytes(message, request);
  } else {
    inet_diag_req_v2 request{};
    request.sdiag_family = family;
    request.sdiag_protocol = IPPROTO_TCP;
    request.idiag_ext = 1U << (INET_DIAG_INFO - 1);
    request.idiag_states = 1U << kTcpEstablished;
    header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    append_bytes(message, request);
  }
  std::memcpy(message.data(), &header, sizeof(header));
  message.resize(NLMSG_ALIGN(message.size()));
  if (!filter.empty()) {
    nlattr attribute{};
    attribute.nla_len = static_cast<__u16>(NLA_HDRLEN + filter.size());
    attribute.nla_type = INET_DIAG_REQ_BYTECODE;
    append_bytes(message, attribute);  // sizeof(nlattr) == NLA_HDRLEN: no padding follows.
    message.insert(message.end(), filter.begin(), filter.end());
    message.resize(NLMSG_ALIGN(message.size()));
  }
  const auto length = static_cast<__u32>(message.size());
  std::memcpy(message.data() + offsetof(nlmsghdr, nlmsg_len), &length, sizeof(length));

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = ::sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                    sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return Error{"netlink sock_diag request: " + errno_text(errno)};

  for (int receives = 0; receives < kMaxReceives; ++receives) {
    iovec io{buffer_.data(), buffer_.size()};
    sockaddr_nl from{};
    msghdr received{};
    received.msg_name = &from;
    received.msg_namelen = sizeof(from);
    received.msg_iov = &io;
    received.msg_iovlen = 1;
    ssize_t count = ::recvmsg(fd_, &received, 0);
    if (count < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd readable{fd_, POLLIN, 0};
        int ready = ::poll(&readable, 1, kStallTimeoutMs);
        if (ready == 0) return Error{"netlink sock_diag dump stalled"};
        if (ready < 0 && errno != EINTR) return Error{"poll on netlink socket: " + errno_text(errno)};
        continue;
      }
      return Error{"netlink sock_diag receive: " + errno_text(errno)};
    }
    if ((received.msg_flags & MSG_TRUNC) != 0) return Error{"netlink sock_diag answer truncated"};
    if (from.nl_pid != 0) continue;  // Only the kernel (port 0) answers dumps.

    // Walk the netlink messages in the datagram (the NLMSG_OK/NLMSG_NEXT rules, written out
    // with explicit sizes).
    std::size_t offset = 0;
    const auto total = static_cast<std::size_t>(count);
    while (total - offset >= sizeof(nlmsghdr)) {
      nlmsghdr reply;
      std::memcpy(&reply, buffer_.data() + offset, sizeof(reply));
      if (reply.nlmsg_len < sizeof(nlmsghdr) || reply.nlmsg_len > total - offset) {
        return Error{"malformed netlink sock_diag answer"};
      }
      const std::uint8_t* payload = buffer_.data() + offset + NLMSG_LENGTH(0);
      const std::size_t payload_length = reply.nlmsg_len - NLMSG_LENGTH(0);
      offset += NLMSG_ALIGN(reply.nlmsg_len);
      // Messages of an earlier, abandoned dump carry an older sequence number.
      if (reply.nlmsg_seq != sequence) continue;

      if (reply.nlmsg_type == NLMSG_DONE) {
        // NLMSG_DONE carries an int: 0, or the negative errno that ended the dump early.
        int error = 0;
        if (payload_length >= sizeof(int)) std::memcpy(&error, payload, sizeof(int));
        if (error < 0) return Error{"netlink sock_diag dump: " + errno_text(-error)};
        return ok_status();
      }
      if (reply.nlmsg_type == NLMSG_ERROR) {
        nlmsgerr error{};
        std::memcpy(&error, payload, std::min(payload_length, sizeof(error)));
        if (error.error == 0) continue;  // An acknowledgement, not an error.
        return Error{"netlink sock_diag: " + errno_text(-error.error)};
      }
      if (reply.nlmsg_type != header.nlmsg_type || payload_length < sizeof(inet_diag_msg)) continue;

      inet_diag_msg diag;
      std::memcpy(&diag, payload, sizeof(diag));
      DiagEntry entry;
      entry.family = diag.idiag_family;
      std::memcpy(entry.address.data(), diag.id.idiag_dst, entry.address.size());
      entry.port = ntohs(diag.id.idiag_dport);
      entry.inode = diag.idiag_inode;
      normalise_v4_mapped(entry.family, entry.address);
      // The kernel zeroes an IPv4 socket's unused address words; make sure of it, as endpoint
      // keys compare all 16 bytes.
      if (entry.family == AF_INET) std::fill(entry.address.begin() + 4, entry.address.end(), 0);

      // The attributes follow the message (rtattr layout, 4-byte aligned); INET_DIAG_INFO holds
      // struct tcp_info. Its length depends on the kernel: copy what both sides know, so fields
      // a newer kernel adds are ignored and ones an older kernel lacks stay zero.
      bool have_info = false;
      std::size_t at = NLMSG_ALIGN(sizeof(inet_diag_msg));
      while (payload_length >= at + sizeof(nlattr)) {
        nlattr attribute;
        std::memcpy(&attribute, payload + at, sizeof(attribute));
        if (attribute.nla_len < NLA_HDRLEN || attribute.nla_len > payload_length - at) break;
        if ((attribute.nla_type & NLA_TYPE_MASK) == INET_DIAG_INFO) {
          tcp_info info{};
          std::memcpy(&info, payload + at + NLA_HDRLEN,
                      std::min<std::size_t>(attribute.nla_len - NLA_HDRLEN, sizeof(info)));
          entry.since_send_ms = info.tcpi_last_data_sent;
          entry.since_recv_ms = info.tcpi_last_data_recv;
          have_info = true;
        }
        at += NLA_ALIGN(attribute.nla_len);
      }
      // Every TCP socket has tcp_info when INET_DIAG_INFO is asked for; one without could not
      // be judged, so it is left out rather than reported with made-up timings.
      if (have_info) out.push_back(entry);
    }
  }
  return Error{"netlink sock_diag dump did not end after " + std::to_string(kMaxReceives) + " receives"};
}

Result<std::vector<std::vector<core::ConnectionSample>>> ConnectionMonitor::Impl::sample(const Watch& watch) {
  std::vector<DiagEntry> entries;
  if (Status status = dump(watch.filter, entries); !status) return status.error();
  kernel_sockets_ += entries.size();

  std::unordered_set<std::uint64_t> own;
  if (!entries.empty()) {
    // Only when there is something to exclude: an idle backend costs no /proc walk.
    if (fd_directory_ == nullptr) fd_directory_ = opendir("/proc/self/fd");
    if (fd_directory_ != nullptr) {
      own = own_socket_inodes(fd_directory_);
    } else if (errno != ENOENT) {
      // Out of descriptors (EMFILE, ENFILE) or refused: this process's own connections cannot be
      // told apart, and counting them would report its health probe as a request in flight. The
      // sample is unknown, not busy.
      return Error{"cannot list /proc/self/fd: " + errno_text(errno)};
    } else if (!warned_no_proc_) {
      // Without /proc at all this process's own connections (health probes) are counted too.
      // They are short, so they never make a long request; this only loses precision.
      spdlog::warn("connection monitor: no /proc/self/fd; this process's sockets are not excluded");
      warned_no_proc_ = true;
    }
  }

  std::vector<std::vector<core::ConnectionSample>> result(watch.upstreams.size());
  for (const DiagEntry& entry : entries) {
    if (own.contains(entry.inode)) continue;
    // Normalised IPv4 destinations carry zeros beyond their 4 bytes, as parsed upstreams do.
    auto found = watch.indices_by_endpoint.find(endpoint_key(entry.family, entry.port, entry.address));
    if (found == watch.indices_by_endpoint.end()) continue;
    for (std::size_t index : found->second) {
      result[index].push_back(core::ConnectionSample{entry.inode, entry.since_send_ms, entry.since_recv_ms});
    }
  }
  return result;
}

void ConnectionMonitor::Impl::arm_or_disarm() {
  if (!started_) return;
  if (upstream_texts_.empty()) {
    if (timer_) timer_->stop();
    return;
  }
  if (!timer_) timer_ = std::make_unique<Timer>(loop_);
  if (timer_->active()) return;
  timer_->start_repeating(interval_, [this] { on_timer(); });
}

void ConnectionMonitor::Impl::on_timer() {
  if (watch_stale_) {
    watch_ = build_watch(upstream_texts_);
    watch_stale_ = false;
  }
  if (watch_.upstreams.empty()) return;
  auto result = sample(watch_);
  if (!result) {
    // Logged once per outage: at one sample a second, every failure would flood the log. The
    // callback is not called, so the trackers keep their last state.
    if (!failing_) {
      spdlog::warn("connection monitor: sample failed: {} (retrying every {} ms)", result.error().message,
                   interval_.count());
    }
    failing_ = true;
    return;
  }
  if (failing_) spdlog::info("connection monitor: sampling works again");
  failing_ = false;

  // Copies: the callback may call set_upstreams(), close() or even destroy the monitor.
  std::vector<Upstream> upstreams = watch_.upstreams;
  SampleCallback callback = on_sample_;
  std::shared_ptr<bool> alive = alive_;
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    callback(upstreams[i].text, (*result)[i]);
    if (!*alive || !started_) return;
  }
}

ConnectionMonitor::ConnectionMonitor(uv_loop_t* loop, std::chrono::milliseconds interval,
                                     SampleCallback on_sample)
    : impl_(std::make_unique<Impl>(loop, interval, std::move(on_sample))) {}

ConnectionMonitor::~ConnectionMonitor() {
  *impl_->alive_ = false;
  impl_->close();
}

void ConnectionMonitor::set_upstreams(const std::vector<std::string>& upstreams) {
  if (upstreams == impl_->upstream_texts_) return;
  impl_->upstream_texts_ = upstreams;
  impl_->watch_stale_ = true;
  impl_->arm_or_disarm();
}

bool ConnectionMonitor::sampling() const {
  return impl_->timer_ && impl_->timer_->active();
}

std::uint64_t ConnectionMonitor::kernel_sockets() const {
  return impl_->kernel_sockets_;
}

Status ConnectionMonitor::start() {
  if (impl_->started_) return ok_status();
  if (Status status = impl_->open_socket(); !status) return status;
  // Opened now, while descriptors are plentiful (sample() retries if this fails).
  if (impl_->fd_directory_ == nullptr) impl_->fd_directory_ = opendir("/proc/self/fd");
  // A dump that matches nothing proves that the kernel answers (a sandbox may allow the socket
  // but refuse the request) before the timer is armed.
  // The single dump is tried first; a kernel that refuses it is asked once per family.
  std::vector<DiagEntry> none;
  impl_->single_dump_ = true;
  if (Status single = impl_->dump(reject_all_filter(), none); !single) {
    impl_->single_dump_ = false;
    if (Status status = impl_->dump(reject_all_filter(), none); !status) {
      impl_->close_socket();
      return status;
    }
  }
  impl_->started_ = true;
  impl_->arm_or_disarm();
  return ok_status();
}

void ConnectionMonitor::close() {
  impl_->close();
}

Result<std::vector<core::ConnectionSample>> ConnectionMonitor::sample_now(const std::string& upstream) {
  auto parsed = parse_upstream(upstream);
  if (!parsed) return parsed.error();
  auto result = impl_->sample(build_watch({upstream}));
  if (!result) return result.error();
  return std::move((*result)[0]);
}

}  // namespace unshelver::io
