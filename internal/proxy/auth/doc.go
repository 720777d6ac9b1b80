// Package auth implements the proxy's permission management: authentication of gRPC calls by
// AccessKey/SecretKey (the v2 "MQv2-HMAC-SHA1" authorization header) and authorization by user
// policies over topics and groups.
//
// Authentication (signature.go): the client signs the value of the x-mq-date-time header with
// HMAC-SHA1 keyed by its SecretKey and sends the lower-case hex digest. The verifier looks the
// AccessKey up, recomputes the digest and compares in constant time. A date-time older or newer
// than the allowed skew (default 15 min) is refused as a replay guard. The official Go SDK
// (go5 v5.1.2) formats its LOCAL time with a literal "Z" suffix, so the stamp is accepted when
// it is within the skew under either reading: as UTC, or as the proxy's local time zone; and,
// for go5 clients only (x-mq-language GOLANG), when it differs from now by a real-world zone
// offset (a multiple of 15 minutes within -12 h..+14 h) give or take the skew, because a go5
// client in another time zone than the proxy's sends a stamp off by its offset (QA F16). For
// go5 the guard therefore bounds a replayed stamp's age only to about a day; other clients
// (Node.js, Java) send real UTC and get the exact window.
//
// Authorization (policy.go): users carry policies; each names a resource pattern
// ("Topic:orders", "Topic:orders-*", "Group:*", "*"), actions ("Pub", "Sub", "All") and a
// decision ("Allow" or "Deny"). A request is allowed when some policy allows it and none
// denies it (deny wins); super users are allowed everything. Unknown users and bad signatures
// yield the same client-facing message so callers cannot probe which users exist.
//
// Storage (file.go): the ACL is a JSON file (see ACL) loaded by Load, written atomically by
// Save (both exported for the admin CLI), and reloaded by Store.Run when its mtime changes.
//
// Goroutines: Store.Run is the only goroutine of the package and is owned by its caller.
package auth
