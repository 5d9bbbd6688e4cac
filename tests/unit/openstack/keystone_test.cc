// Keystone v3 as data: credentials from config.yaml and clouds.yaml, the auth request body, the
// token answer and the catalog's endpoint choice (contract §1).
#include "openstack/keystone.h"

#include <gtest/gtest.h>

namespace unshelver::core::openstack {
namespace {

using nlohmann::json;

OpenStackSettings password_settings() {
  OpenStackSettings settings;
  settings.configured = true;
  settings.auth_url = "https://keystone.example.org:5000/v3";
  settings.username = "demo";
  settings.password = "s3cret-password";
  settings.project_name = "gpu-project";
  return settings;
}

TEST(OpenStackAuth, PasswordBodyScopesToTheProjectWithDomains) {
  auto credentials = resolve_credentials(password_settings(), {});
  ASSERT_TRUE(credentials) << credentials.error().message;
  const json body = json::parse(auth_request_body(*credentials));
  EXPECT_EQ(body["auth"]["identity"]["methods"], json::array({"password"}));
  const json& user = body["auth"]["identity"]["password"]["user"];
  EXPECT_EQ(user["name"], "demo");
  EXPECT_EQ(user["domain"]["name"], "Default");
  EXPECT_EQ(user["password"], "s3cret-password");
  EXPECT_EQ(body["auth"]["scope"]["project"]["name"], "gpu-project");
  EXPECT_EQ(body["auth"]["scope"]["project"]["domain"]["name"], "Default");
}

TEST(OpenStackAuth, ProjectIdNeedsNoDomain) {
  OpenStackSettings settings = password_settings();
  settings.project_name.clear();
  settings.project_id = "p-1";
  auto credentials = resolve_credentials(settings, {});
  ASSERT_TRUE(credentials);
  const json body = json::parse(auth_request_body(*credentials));
  EXPECT_EQ(body["auth"]["scope"]["project"], json({{"id", "p-1"}}));
}

TEST(OpenStackAuth, ApplicationCredentialCarriesNoScope) {
  OpenStackSettings settings;
  settings.configured = true;
  settings.auth_url = "https://keystone.example.org:5000";
  settings.application_credential_id = "ac-1";
  settings.application_credential_secret = "ac-secret";
  auto credentials = resolve_credentials(settings, {});
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->method, AuthMethod::kApplicationCredential);
  const json body = json::parse(auth_request_body(*credentials));
  EXPECT_EQ(body["auth"]["identity"]["methods"], json::array({"application_credential"}));
  EXPECT_EQ(body["auth"]["identity"]["application_credential"],
            json({{"id", "ac-1"}, {"secret", "ac-secret"}}));
  EXPECT_FALSE(body["auth"].contains("scope"));  // Keystone rejects a scope here
}

TEST(OpenStackAuth, TokenUrlWithAndWithoutVersion) {
  EXPECT_EQ(token_url("https://k:5000/v3"), "https://k:5000/v3/auth/tokens");
  EXPECT_EQ(token_url("https://k:5000/v3/"), "https://k:5000/v3/auth/tokens");
  EXPECT_EQ(token_url("https://k:5000"), "https://k:5000/v3/auth/tokens");
  EXPECT_EQ(token_url("https://k/identity/"), "https://k/identity/v3/auth/tokens");
}

constexpr const char* kCloudsYaml = R"(clouds:
  other:
    auth:
      auth_url: https://wrong.example.org
  jetstream:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://js2.jetstream-cloud.org:5000/v3/
      application_credential_id: "abc"
      application_credential_secret: "from-clouds"
    region_name: IU
    interface: internal
    identity_api_version: 3
)";

TEST(OpenStackAuth, CloudsYamlEntryFillsTheCredentials) {
  OpenStackSettings settings;
  settings.configured = true;
  settings.cloud = "jetstream";
  auto credentials = resolve_credentials(settings, {{"/home/u/.config/openstack/clouds.yaml", kCloudsYaml}});
  ASSERT_TRUE(credentials) << credentials.error().message;
  EXPECT_EQ(credentials->method, AuthMethod::kApplicationCredential);
  EXPECT_EQ(credentials->auth_url, "https://js2.jetstream-cloud.org:5000/v3/");
  EXPECT_EQ(credentials->application_credential_secret, "from-clouds");
  EXPECT_EQ(credentials->region_name, "IU");
  EXPECT_EQ(credentials->interface, "internal");
  EXPECT_NE(credentials->source.find("jetstream"), std::string::npos);
}

TEST(OpenStackAuth, ConfigYamlWinsOverTheCloudsEntry) {
  OpenStackSettings settings;
  settings.configured = true;
  settings.cloud = "jetstream";
  settings.region_name = "TACC";
  auto credentials = resolve_credentials(settings, {{"clouds.yaml", kCloudsYaml}});
  ASSERT_TRUE(credentials);
  EXPECT_EQ(credentials->region_name, "TACC");
}

TEST(OpenStackAuth, FirstFileWithTheEntryWins) {
  OpenStackSettings settings;
  settings.configured = true;
  settings.cloud = "jetstream";
  const std::string without = "clouds:\n  other: {auth: {auth_url: https://x}}\n";
  auto credentials =
      resolve_credentials(settings, {{"clouds.yaml", without}, {"/etc/openstack/clouds.yaml", kCloudsYaml}});
  ASSERT_TRUE(credentials);
  EXPECT_NE(credentials->source.find("/etc/openstack/clouds.yaml"), std::string::npos);
}

TEST(OpenStackAuth, MissingCloudNamesTheFilesSearched) {
  OpenStackSettings settings;
  settings.configured = true;
  settings.cloud = "nope";
  auto credentials = resolve_credentials(settings, {{"clouds.yaml", kCloudsYaml}});
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().message.find("no cloud named 'nope'"), std::string::npos);
  EXPECT_NE(credentials.error().message.find("clouds.yaml"), std::string::npos);
}

TEST(OpenStackAuth, BrokenCloudsYamlNamesFileAndLine) {
  OpenStackSettings settings;
  settings.configured = true;
  settings.cloud = "x";
  auto credentials = resolve_credentials(settings, {{"/etc/openstack/clouds.yaml", "clouds:\n  x: [\n"}});
  ASSERT_FALSE(credentials);
  EXPECT_EQ(credentials.error().message.rfind("/etc/openstack/clouds.yaml:", 0), 0u)
      << credentials.error().message;
}

TEST(OpenStackAuth, IncompleteCredentialsSayWhatIsMissingButNeverTheSecret) {
  OpenStackSettings settings = password_settings();
  settings.project_name.clear();
  auto credentials = resolve_credentials(settings, {});
  ASSERT_FALSE(credentials);
  EXPECT_NE(credentials.error().message.find("project_name"), std::string::npos);
  EXPECT_EQ(credentials.error().message.find("s3cret-password"), std::string::npos);
}

TEST(OpenStackAuth, SearchPathFollowsOpenstacksdk) {
  EXPECT_EQ(clouds_yaml_search_path("", "/home/u"),
            (std::vector<std::string>{"clouds.yaml", "/home/u/.config/openstack/clouds.yaml",
                                      "/etc/openstack/clouds.yaml"}));
  EXPECT_EQ(clouds_yaml_search_path("/x.yaml", "").front(), "/x.yaml");
}

TEST(OpenStackAuth, ParsesTheTokenAnswer) {
  const std::string body = R"({"token":{"methods":["password"],"expires_at":"2026-11-22T20:00:00.000000Z",
    "project":{"id":"p-1","name":"demo"},"catalog":[{"type":"compute","endpoints":[]}]}})";
  auto token = parse_token_response("gAAAAtoken", body);
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(token->id, "gAAAAtoken");
  EXPECT_EQ(token->project_id, "p-1");
  EXPECT_EQ(token->catalog.size(), 1u);
  EXPECT_FALSE(parse_token_response("", body));  // the token is in the header, never the body
  EXPECT_FALSE(parse_token_response("t", R"({"token":{}})"));
}

TEST(OpenStackAuth, RenewsTwoMinutesBeforeExpiry) {
  Token token;
  token.id = "t";
  const auto now = std::chrono::system_clock::now();
  token.expires_at = now + std::chrono::seconds(121);
  EXPECT_FALSE(token_needs_renewal(token, now));
  token.expires_at = now + std::chrono::seconds(119);
  EXPECT_TRUE(token_needs_renewal(token, now));
  EXPECT_TRUE(token_needs_renewal(Token{}, now));
}

const json kCatalog = json::parse(R"([
  {"type":"identity","endpoints":[{"interface":"public","region_id":"RegionOne","url":"http://k/identity"}]},
  {"type":"compute","endpoints":[
    {"interface":"admin","region_id":"RegionOne","region":"RegionOne","url":"http://admin/compute/v2.1"},
    {"interface":"internal","region_id":"RegionOne","region":"RegionOne","url":"http://internal/compute/v2.1"},
    {"interface":"public","region_id":"RegionOne","region":"RegionOne","url":"http://public/compute/v2.1/"},
    {"interface":"public","region_id":"RegionTwo","region":"RegionTwo","url":"http://two/compute/v2.1"}]},
  {"type":"dns","endpoints":[{"interface":"publicURL","region":"RegionOne","url":"http://dns"}]}])");

TEST(OpenStackAuth, EndpointByTypeInterfaceAndRegion) {
  EXPECT_EQ(*select_endpoint(kCatalog, "compute", "public", ""), "http://public/compute/v2.1");
  EXPECT_EQ(*select_endpoint(kCatalog, "compute", "internal", ""), "http://internal/compute/v2.1");
  EXPECT_EQ(*select_endpoint(kCatalog, "compute", "public", "RegionTwo"), "http://two/compute/v2.1");
  EXPECT_EQ(*select_endpoint(kCatalog, "dns", "public", "RegionOne"), "http://dns");  // v2 spelling, `region`
  auto missing_region = select_endpoint(kCatalog, "compute", "public", "RegionThree");
  ASSERT_FALSE(missing_region);
  EXPECT_NE(missing_region.error().message.find("RegionTwo"), std::string::npos);
  auto missing_service = select_endpoint(kCatalog, "object-store", "public", "");
  ASSERT_FALSE(missing_service);
  EXPECT_NE(missing_service.error().message.find("object-store"), std::string::npos);
}

TEST(OpenStackAuth, ErrorMessagesOfEveryService) {
  EXPECT_EQ(
      error_message_of(
          R"({"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}})"),
      "The request you have made requires authentication.");
  EXPECT_EQ(
      error_message_of(
          R"({"conflictingRequest":{"code":409,"message":"Cannot 'unshelve' instance x while it is in vm_state active"}})"),
      "Cannot 'unshelve' instance x while it is in vm_state active");
  EXPECT_EQ(error_message_of(R"({"code":404,"type":"zone_not_found","message":"Could not find Zone"})"),
            "Could not find Zone");
  EXPECT_EQ(error_message_of("<html><h1>Unauthorized</h1><p>This server could not verify.</p></html>"),
            "Unauthorized This server could not verify.");
}

}  // namespace
}  // namespace unshelver::core::openstack
