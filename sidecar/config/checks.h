// The configuration's rules that are more than a schema row: the value checks that rows point at,
// and the cross-field rules applied after the whole file is read (YAML key order must not
// matter). Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/reader.h"

namespace unshelver::core::config_detail {

// Value checks for schema rows: "" when the text is fine, else the message.
std::string check_label(std::string_view text);
// notification_email: one address or several separated by commas, each a plain address.
std::string check_email(std::string_view text);
// The addresses of a notification_email value, trimmed; empty ones are skipped.
std::vector<std::string> split_addresses(std::string_view text);
// Whether `address` is a plain addr-spec that can go into a mail header as it is: local@domain,
// printable ASCII, without spaces, quotes, parentheses, angle brackets, commas or semicolons.
bool is_plain_mail_address(std::string_view address);
std::string check_not_empty(std::string_view text);
std::string check_shelve_route(std::string_view text);
std::string check_interface(std::string_view text);
// caddy.admin: an http:// URL or a Unix socket (config/caddy_admin.h).
std::string check_admin_url(std::string_view text);
std::string check_absolute_path(std::string_view text);
std::string check_site_url(std::string_view text);
std::string check_bind(std::string_view text);
// "sha256:" and 64 hex digits. The message never quotes the value: a key pasted in by mistake
// must not reach the logs.
std::string check_api_key_digest(std::string_view text);
std::string check_identifier(std::string_view text);
// ha.instance: letters, digits, '-', '_' and '.', at most 63 characters (it becomes part of etcd keys).
std::string check_instance_name(std::string_view text);
std::string check_backend_url(std::string_view text);
std::string check_bare_host(std::string_view text);
std::string check_regex(std::string_view text);

// openstack.interface in its normal spelling (openstacksdk also accepts publicURL and friends).
std::optional<std::string> normal_interface(std::string_view text);

// After the top level: openstack.verify as a CA bundle, and the auth_url's scheme.
void finish_openstack_section(Reader& reader, Draft& draft);

// The app section's defaults that depend on other keys (after the environment has been applied).
void finish_app(Draft& draft);
// Walks every buttons[i], applies inheritance from the top level and app, and checks ids,
// instances and hosts for duplicates.
void resolve_buttons(Reader& reader, Draft& draft, bool backends_required);
// OpenStack backends and the Swift mirror need credentials, in one of three combinations.
void check_openstack(Reader& reader, Draft& draft);
// The credentials that buttons with provider exoscale need.
void check_exoscale(Reader& reader, Draft& draft);
// The ha section's keys that go together: a client certificate and its key, a user and a password.
void check_ha(Reader& reader, const Draft& draft);
// Managing Caddy needs a site address for the launcher and for every backend.
void check_caddy(Reader& reader, const Draft& draft);
// The Python unshelver's minimum length of its two shared secrets.
void check_secret_lengths(Reader& reader, const Draft& draft);
// app.env: production refuses missing, short, guessable or copied secrets.
void check_production_secrets(Reader& reader, const Draft& draft);

}  // namespace unshelver::core::config_detail
