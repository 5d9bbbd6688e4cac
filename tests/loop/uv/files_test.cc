// uv/files: the one whole-file reader and the one atomic writer. No loop is needed; they live in
// the runtime library, which is why the test is here.
#include "uv/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace unshelver::io {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "files-test-XXXXXX").string();
    ASSERT_NE(nullptr, ::mkdtemp(pattern.data()));
    directory_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::string path(const std::string& name) const { return directory_ + "/" + name; }

  std::string directory_;
};

TEST_F(FilesTest, ReadsWhatWasWrittenAtomically) {
  const std::string data("line one\n\0binary\xff", 17);
  ASSERT_TRUE(write_file_atomically(path("a"), data, 0640).ok());
  const Result<std::string> read = read_file(path("a"));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(*read, data);
  struct stat info {};
  ASSERT_EQ(0, ::stat(path("a").c_str(), &info));
  EXPECT_EQ(info.st_mode & 07777, 0640u);
  // The temporary file is gone: the directory holds the target alone.
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory_)) {
    EXPECT_EQ(path("a"), entry.path().string());
    ++entries;
  }
  EXPECT_EQ(1, entries);
}

TEST_F(FilesTest, ReadsLargeAndEmptyFiles) {
  const std::string big(300 * 1024 + 7, 'x');
  ASSERT_TRUE(write_file_atomically(path("big"), big, 0600).ok());
  EXPECT_EQ(read_file(path("big")).value(), big);
  ASSERT_TRUE(write_file_atomically(path("empty"), "", 0600).ok());
  EXPECT_EQ(read_file(path("empty")).value(), "");
}

TEST_F(FilesTest, MissingFileIsAnErrorOrNothing) {
  const Result<std::string> missing = read_file(path("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "cannot read " + path("nope") + ": No such file or directory");
  const auto optional = read_file_if_exists(path("nope"));
  ASSERT_TRUE(optional.ok());
  EXPECT_FALSE(*optional);
}

TEST_F(FilesTest, OtherErrorsAreErrorsEvenIfMissingIsAllowed) {
  // Reading a directory fails with EISDIR at read(2).
  const auto directory = read_file_if_exists(directory_);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, "cannot read " + directory_ + ": Is a directory");
}

TEST_F(FilesTest, BoundIsEnforced) {
  ASSERT_TRUE(write_file_atomically(path("f"), std::string(100, 'y'), 0600).ok());
  EXPECT_TRUE(read_file(path("f"), 100).ok());
  const Result<std::string> over = read_file(path("f"), 99);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message, path("f") + " is larger than 99 bytes");
}

// The Caddyfile's way (caddy/router.cc): an admin's link is kept and its file replaced.
TEST_F(FilesTest, AtomicWriteReplacesTheTargetOfASymlinkWhenAskedToFollow) {
  ASSERT_TRUE(write_file_atomically(path("target"), "old", 0600).ok());
  std::filesystem::create_symlink("target", path("link"));
  ASSERT_TRUE(write_file_atomically(path("link"), "new", 0600, SymlinkTarget::kFollow).ok());
  EXPECT_TRUE(std::filesystem::is_symlink(path("link")));
  EXPECT_EQ(read_file(path("target")).value(), "new");
}

// Unshelver's own files (issue 15 §8): a link planted under the target's name is refused, and
// neither the link nor the file it points to changes.
TEST_F(FilesTest, AtomicWriteRefusesASymlinkTargetByDefault) {
  ASSERT_TRUE(write_file_atomically(path("events.jsonl"), "precious", 0600).ok());
  std::filesystem::create_symlink(path("events.jsonl"), path("state.json"));
  const Status written = write_file_atomically(path("state.json"), "state", 0600);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().message, "refusing to write " + path("state.json") +
                                         ": it is a symbolic link (Unshelver's own files are never links; "
                                         "remove it)");
  EXPECT_TRUE(std::filesystem::is_symlink(path("state.json")));
  EXPECT_EQ(read_file(path("events.jsonl")).value(), "precious");
  // A dangling link is refused too: following it would create a file wherever it points.
  std::filesystem::create_symlink(path("elsewhere"), path("checkpoint.json"));
  EXPECT_FALSE(write_file_atomically(path("checkpoint.json"), "{}", 0600).ok());
  EXPECT_FALSE(std::filesystem::exists(path("elsewhere")));
}

// The mode a caller passes is for a new file; an admin's chmod of an existing one stays.
TEST_F(FilesTest, AtomicWriteKeepsAnExistingTargetsMode) {
  ASSERT_TRUE(write_file_atomically(path("Caddyfile"), "one", 0644).ok());
  EXPECT_EQ(0644, static_cast<int>(std::filesystem::status(path("Caddyfile")).permissions()) & 0777);
  ASSERT_EQ(0, ::chmod(path("Caddyfile").c_str(), 0640));
  ASSERT_TRUE(write_file_atomically(path("Caddyfile"), "two", 0644).ok());
  EXPECT_EQ(read_file(path("Caddyfile")).value(), "two");
  EXPECT_EQ(0640, static_cast<int>(std::filesystem::status(path("Caddyfile")).permissions()) & 0777);
  // Through a followed link, the mode of the file it points to.
  ASSERT_EQ(0, ::chmod(path("Caddyfile").c_str(), 0600));
  std::filesystem::create_symlink("Caddyfile", path("link"));
  ASSERT_TRUE(write_file_atomically(path("link"), "three", 0644, SymlinkTarget::kFollow).ok());
  EXPECT_EQ(0600, static_cast<int>(std::filesystem::status(path("Caddyfile")).permissions()) & 0777);
}

// A symbolic link planted where a careless writer would put its temporary file (and every
// other name next to the target) is never followed: the file it points to keeps its content.
TEST_F(FilesTest, AtomicWriteNeverFollowsAPlantedTemporaryName) {
  ASSERT_TRUE(write_file_atomically(path("victim"), "precious", 0600).ok());
  std::filesystem::create_symlink(path("victim"), path("Caddyfile.tmp"));
  ASSERT_TRUE(write_file_atomically(path("Caddyfile"), "rendered", 0644).ok());
  EXPECT_EQ(read_file(path("victim")).value(), "precious");
  EXPECT_EQ(read_file(path("Caddyfile")).value(), "rendered");
  EXPECT_EQ(0644, static_cast<int>(std::filesystem::status(path("Caddyfile")).permissions()) & 0777);
  // Nothing is left behind next to the target but the planted link.
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory_)) {
    static_cast<void>(entry);
    ++entries;
  }
  EXPECT_EQ(3, entries);  // victim, Caddyfile.tmp (the planted link), Caddyfile
}

}  // namespace
}  // namespace unshelver::io
