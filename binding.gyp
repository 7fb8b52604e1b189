{
  "variables": {
    "source_hash": "<!(node scripts/source-hash.cjs)"
  },
  "targets": [
    {
      "target_name": "boxlite_layout",
      "sources": [
        "<!@(node -p \"const s = require('./native/sources.json'); [...s.binding, ...s.common].join(' ')\")"
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
            "<!@(node -p \"require('./native/sources.json').linux.join(' ')\")"
          ],
          "ldflags": ["-Wl,--as-needed"]
        }],
        ["OS=='mac'", {
          "sources": [
            "<!@(node -p \"require('./native/sources.json').darwin.join(' ')\")"
          ],
          "xcode_settings": {
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
          }
        }]
      ]
    }
  ]
}
