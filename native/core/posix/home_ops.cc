// The home's own directories: prepare, the same-filesystem check, the image
// cache and the list of boxes.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "../internal.h"

namespace blx {

namespace {

// The home's directories, in the order BoxLite's prepare() makes them.
struct HomeDir {
  const char* rel;
  mode_t mode;
};
constexpr HomeDir kHomeDirs[] = {
    {"boxes", 0755},
    {"bases", 0755},
    {"tmp", 0700},
    {"images/layers", 0755},
    {"images/manifests", 0755},
    {"images/disk-images", 0755},
};

// The devices of tmp, bases and images/disk-images (the facade judges them:
// staged installs rename(2) from tmp into the others, and rename cannot
// cross filesystems).
Error devices_of(Dir home, Trust trust, HomePrepareResult* out) {
  const char* rels[] = {"tmp", "bases", "images/disk-images"};
  Device* devs[] = {&out->tmp, &out->bases, &out->disk_images};
  for (int i = 0; i < 3; i++) {
    OwnedDir dir;
    if (Error e = open_dir_beneath(home, rels[i], trust, &dir, &out->repaired)) {
      if (e.code == ENOENT) e.reason = Reason::kNotPrepared;
      return e;
    }
    FileStat st;
    if (Error e = stat_at(dir.get(), "", false, &st, dir.path)) return e;
    *devs[i] = Device{st.dev_major, st.dev_minor};
  }
  return {};
}

}  // namespace

bool is_valid_id(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Error home_prepare(const std::string& home, HomePrepareResult* out) {
  *out = HomePrepareResult{};
  OwnedDir root;
  if (Error e = open_root(home, true, 0755, Trust::kRepair, &root, &out->repaired)) return e;
  for (const HomeDir& d : kHomeDirs) {
    OwnedDir made;
    if (Error e = make_dir_beneath(root, d.rel, d.mode, Trust::kRepair, &made, &out->repaired)) return e;
  }
  return devices_of(root, Trust::kCheck, out);
}

Error home_devices(const std::string& home, HomePrepareResult* out) {
  *out = HomePrepareResult{};
  OwnedDir root;
  if (Error e = open_root(home, false, 0, Trust::kCheck, &root, nullptr)) return e;
  return devices_of(root, Trust::kCheck, out);
}

Error images_prepare(const DirRef& images, std::vector<std::string>* repaired) {
  repaired->clear();
  OwnedDir root;
  if (Error e = open_root(images.root, true, 0755, Trust::kRepair, &root, repaired)) return e;
  OwnedDir dir;
  if (Error e = make_dir_beneath(root, images.rel, 0755, Trust::kRepair, &dir, repaired)) return e;
  for (const char* rel : {"layers", "extracted", "disk-images", "manifests", "configs"}) {
    OwnedDir made;
    if (Error e = make_dir_beneath(dir, rel, 0755, Trust::kRepair, &made, repaired)) return e;
  }
  return {};
}

Error list_box_entries(Dir boxes, std::vector<BoxEntry>* out) {
  out->clear();
  std::vector<DirEntry> entries;
  if (Error e = list_dir(boxes, &entries)) return e;
  for (const DirEntry& d : entries) {
    EntryKind kind = EntryKind::kStray;
    if (d.name.compare(0, 7, ".trash-") == 0) {
      kind = EntryKind::kTrash;
    } else if (is_valid_id(d.name)) {
      unsigned char type = d.type;
      if (type == DT_UNKNOWN) {
        FileStat st;
        if (!stat_at(boxes.fd, d.name.c_str(), false, &st, boxes.child(d.name)) && S_ISDIR(st.mode)) {
          type = DT_DIR;
        }
      }
      if (type == DT_DIR) kind = EntryKind::kBox;
    }
    out->push_back(BoxEntry{d.name, kind});
  }
  std::sort(out->begin(), out->end(), [](const BoxEntry& a, const BoxEntry& b) { return a.name < b.name; });
  return {};
}

Error list_boxes(const DirRef& boxes, std::vector<BoxEntry>* out) {
  out->clear();
  OwnedDir dir;
  if (Error e = open_dir_ref(boxes, false, &dir)) return e.code == ENOENT ? Error{} : e;
  return list_box_entries(dir, out);
}

}  // namespace blx
