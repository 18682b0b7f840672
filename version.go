package ferry

// Version is the Ferry release this source tree is, or the one it is
// heading for while it ends in "-dev". Releases are semantic-versioning
// tags on this module (v0.1.0); plug-in modules under contrib/ are tagged
// by their path (contrib/broker/kafka/v0.1.0). Until v1.0.0 a minor
// release may change APIs; CHANGELOG.md lists every change.
const Version = "v0.1.0-dev"
