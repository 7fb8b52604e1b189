{
  "variables": {
    "source_hash": "<!(node scripts/source-hash.cjs)"
  },
  "targets": [
    {
      "target_name": "boxlite_layout",
      "sources": [
        "native/binding.cc",
        "native/core/posix/common.cc",
        "native/core/posix/clone.cc",
        "native/core/posix/remove.cc",
        "native/core/posix/socket_link.cc",
        "native/core/posix/shared_state.cc",
        "native/core/posix/mount_walk.cc",
        "native/core/posix/lock.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "BLX_SOURCE_HASH=\"<(source_hash)\""
      ],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/core/linux/stat.cc",
            "native/core/linux/fsfacts.cc",
            "native/core/linux/mount.cc",
            "native/core/linux/clone.cc"
          ],
          "ldflags": ["-Wl,--as-needed"]
        }],
        ["OS=='mac'", {
          "sources": [
            "native/core/darwin/stat.cc",
            "native/core/darwin/fsfacts.cc",
            "native/core/darwin/mount.cc",
            "native/core/darwin/clone.cc"
          ],
          "xcode_settings": {
            "MACOSX_DEPLOYMENT_TARGET": "10.15",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
          }
        }]
      ]
    }
  ]
}
