#include "uv/http_types.h"

#include <strings.h>

namespace unshelver::io {

const std::string* find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) {
      return &value;
    }
  }
  return nullptr;
}

HttpResponse& HttpResponse::set_header(std::string name, std::string value) {
  for (auto& [key, existing] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) {
      existing = std::move(value);
      return *this;
    }
  }
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

namespace {
HttpResponse with_type(int status, std::string body, const char* content_type) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers.emplace_back("Content-Type", content_type);
  return response;
}
}  // namespace

HttpResponse HttpResponse::text(int status, std::string body) {
  return with_type(status, std::move(body), "text/plain; charset=utf-8");
}

HttpResponse HttpResponse::json(int status, std::string body) {
  return with_type(status, std::move(body), "application/json");
}

HttpResponse HttpResponse::html(int status, std::string body) {
  return with_type(status, std::move(body), "text/html; charset=utf-8");
}

HttpResponse HttpResponse::redirect(int status, std::string location) {
  HttpResponse response = text(status, "See " + location + "\n");
  response.headers.emplace_back("Location", std::move(location));
  return response;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace unshelver::io
