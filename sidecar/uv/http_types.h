// Plain HTTP request and response values shared by the server, the client and the web handlers.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/shared_text.h"

namespace unshelver::io {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive lookup (RFC 9110 §5.1: field names are case-insensitive). Returns nullptr when
// the header is absent; with repeated headers, the first one.
const std::string* find_header(const HeaderList& headers, std::string_view name);

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // the request target as sent: "/wake/gpu?x=1"
  std::string path;    // the target up to '?', not percent-decoded
  std::string query;   // after '?', without it
  int http_major = 1;
  int http_minor = 1;
  HeaderList headers;  // names as received
  std::string body;
  std::string remote_address;  // "127.0.0.1"; "unix" for a peer on the proxy socket
  // The peer connected to the Unix socket of HttpServer::listen_unix, which only the proxy in
  // front (Caddy) may open: its forwarding headers can be believed.
  bool via_proxy_socket = false;

  const std::string* header(std::string_view name) const { return find_header(headers, name); }
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;  // Content-Length, Date and Connection are added by the server
  std::string body;
  // More of the body, sent after `body` without being copied into the answer: slices of
  // immutable buffers that a cache shares with every answer in flight (a large document kept in
  // pieces). The server keeps them until the kernel has taken the bytes.
  core::SharedText shared_body;

  // The whole body (`body`, then `shared_body`), copied: for tests and small answers.
  std::string content() const { return shared_body.empty() ? body : body + shared_body.joined(); }
  std::size_t content_length() const { return body.size() + shared_body.size(); }

  HttpResponse& set_header(std::string name, std::string value);
  static HttpResponse text(int status, std::string body);
  static HttpResponse json(int status, std::string body);
  static HttpResponse html(int status, std::string body);
  static HttpResponse redirect(int status, std::string location);
};

// "OK", "Not Found", ... for the status codes we send; "Unknown" otherwise.
std::string_view reason_phrase(int status);

}  // namespace unshelver::io
